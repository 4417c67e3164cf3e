"""Content credentials of generated images (docs/content-credentials.md).

- ``generated_png_sign``: the generation job signs every PNG before it is stored, so the stored
  original (what curators download, the kiosk shows and the study bag keeps) carries a C2PA
  manifest. Signing adds chunks only; the pixels stay as rendered.
- ``generated_image_copy``: the copy a download answers: the signed original, or (when the
  deployment marks downloads) the pixels with a visible, localized "AI-generated" mark, signed
  again as an edit of the same content id.
- ``credentials_verify`` / ``generated_image_verify``: what a verifier reads in a file.

The certificate and key are the museum's (ATELIER_C2PA_CERT / ATELIER_C2PA_KEY); outside
production a development chain is made in ATELIER_C2PA_DEV_DIR on first use.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import tomllib
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import DatabaseError

from generation.diffusion import content_credentials as cc
from generation.models import GeneratedImage, GenerationRequest, TrainingRun

log = logging.getLogger(__name__)

DEV_FILES = ("root.pem", "cert.pem", "key.pem")
MARK_EDIT = "Visible 'AI-generated' label drawn on the image (GB 45438-2025 explicit label)"


@cache
def atelier_version() -> str:
    with open(Path(settings.BASE_DIR) / "pyproject.toml", "rb") as handle:
        return str(tomllib.load(handle).get("project", {}).get("version", "0"))


# --- certificates ---------------------------------------------------------------------------


def dev_certificate_create(*, folder: Path | None = None, replace: bool = False) -> Path:
    """Make the development chain (root CA, signing certificate, key) in ``folder``; keep one
    already there unless ``replace``. Written whole or not at all (workers may race)."""
    folder = Path(folder or settings.ATELIER_C2PA_DEV_DIR)
    if not replace and all((folder / name).is_file() for name in DEV_FILES):
        return folder
    chain = cc.dev_chain_create(settings.ATELIER_ORGANISATION)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".c2pa-", dir=folder.parent))
    for name, data in zip(DEV_FILES, (chain.root_pem, chain.cert_pem, chain.key_pem), strict=True):
        (staging / name).write_bytes(data)
    os.chmod(staging / "key.pem", 0o600)
    if replace and folder.exists():
        for name in DEV_FILES:
            (folder / name).unlink(missing_ok=True)
        folder.rmdir()
    try:
        staging.rename(folder)
    except OSError:  # another process made it first: use theirs
        for name in DEV_FILES:
            (staging / name).unlink(missing_ok=True)
        staging.rmdir()
    return folder


def using_dev_certificate() -> bool:
    return not (settings.ATELIER_C2PA_CERT and settings.ATELIER_C2PA_KEY)


def signer_config() -> cc.SignerConfig:
    """The museum's certificate chain and key, or the development chain (not in production)."""
    if using_dev_certificate():
        if settings.PRODUCTION:
            raise ImproperlyConfigured(
                "ATELIER_C2PA_CERT and ATELIER_C2PA_KEY are not set: production signs generated "
                "images only with the museum's own certificate (docs/content-credentials.md)."
            )
        folder = dev_certificate_create()
        cert, key = folder / "cert.pem", folder / "key.pem"
    else:
        cert, key = Path(settings.ATELIER_C2PA_CERT), Path(settings.ATELIER_C2PA_KEY)
    try:
        return cc.SignerConfig(
            cert_chain_pem=cert.read_bytes(),
            key_pem=key.read_bytes(),
            alg=settings.ATELIER_C2PA_ALG,
            tsa_url=settings.ATELIER_C2PA_TSA_URL or None,
        )
    except OSError as exc:
        raise ImproperlyConfigured(f"Cannot read the C2PA certificate or key: {exc}") from exc


@register(Tags.security, deploy=True)
def c2pa_certificate_check(app_configs=None, **kwargs) -> list[CheckMessage]:
    """``check --deploy`` in production: the museum's certificate and key are set and read."""
    if not settings.PRODUCTION:
        return []
    try:
        signer_config()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="atelier.E022", hint="See docs/content-credentials.md.")]
    return []


def trust_anchors_pem() -> str:
    """The roots verification trusts: ATELIER_C2PA_TRUST_ANCHORS, else the dev root in use."""
    path = settings.ATELIER_C2PA_TRUST_ANCHORS
    if not path and using_dev_certificate() and not settings.PRODUCTION:
        path = str(Path(settings.ATELIER_C2PA_DEV_DIR) / "root.pem")
    try:
        return Path(path).read_text(encoding="ascii") if path else ""
    except OSError:
        return ""


# --- what is signed -------------------------------------------------------------------------


def generation_claim(
    *,
    request: GenerationRequest,
    condition: str,
    seed: int,
    content_id: str | None = None,
    edits: tuple[str, ...] = (),
    details: dict[str, Any] | None = None,
) -> cc.GenerationClaim:
    """The manifest's statements about one image of ``request``."""
    base = request.base_model
    ingredients = [
        cc.ModelIngredient(
            title=base.name, sha256=base.sha256, kind="base model", detail={"format": base.kind}
        )
    ]
    dataset = None
    run = request.training_run
    if condition == GeneratedImage.Condition.LORA and run is not None:
        detail: dict[str, Any] = {"training_run": run.pk, "scale": request.lora_scale}
        if run.lora_kohya_id:
            detail["kohya_sha256"] = run.lora_kohya.sha256
        ingredients.append(
            cc.ModelIngredient(title=str(run), sha256=run.lora_sha256, kind="LoRA", detail=detail)
        )
        dataset = {"id": run.dataset_id, "version": run.dataset.version, "name": run.dataset.name}
    return cc.GenerationClaim(
        content_id=content_id or f"urn:uuid:{uuid.uuid4()}",
        title=f"ai-generated-{request.pk}-{seed}-{condition}.png",
        generator_name="Atelier",
        generator_version=atelier_version(),
        producer=settings.ATELIER_ORGANISATION,
        ingredients=tuple(ingredients),
        dataset=dataset,
        prompt_source={
            "passage_id": request.passage_id,
            "item_id": request.item_id,
            "prompt": request.final_prompt,
        },
        details={"request_id": request.pk, "seed": seed, "condition": condition, **(details or {})},
        edits=edits,
    )


def generated_png_sign(
    *, png: bytes, request: GenerationRequest, condition: str, seed: int
) -> bytes:
    """``png`` with its content credentials (XMP + signed C2PA manifest); same pixels."""
    claim = generation_claim(request=request, condition=condition, seed=seed)
    return cc.sign_png(png, claim, signer_config())


def contact_sheet_sign(*, png: bytes, request: GenerationRequest) -> bytes:
    """The request's contact sheet with content credentials: a composite of its images."""
    import dataclasses

    with_lora = GeneratedImage.Condition.LORA in request.conditions
    claim = generation_claim(
        request=request,
        condition=GeneratedImage.Condition.LORA if with_lora else GeneratedImage.Condition.BASE,
        seed=request.seeds[0] if request.seeds else 0,
    )
    claim = dataclasses.replace(
        claim,
        title=f"contact-sheet-{request.pk}.png",
        details={
            "request_id": request.pk,
            "contact_sheet": True,
            "seeds": request.seeds,
            "conditions": request.conditions,
        },
        digital_source_type=cc.COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    )
    return cc.sign_png(png, claim, signer_config())


def validation_png_sign(
    *, png: bytes, run: TrainingRun, condition: str, step: int, seed: int, prompt: str
) -> bytes:
    """A training run's validation image with content credentials: the base model, or the
    LoRA being trained (at ``step``; its file's hash when that checkpoint is stored)."""
    base = run.base_model
    ingredients = [
        cc.ModelIngredient(
            title=base.name, sha256=base.sha256, kind="base model", detail={"format": base.kind}
        )
    ]
    dataset = None
    if condition == "lora":
        checkpoint = run.checkpoints.filter(step=step, lora__isnull=False).first()
        if checkpoint is not None:
            ingredients.append(
                cc.ModelIngredient(
                    title=f"{run} at step {step}",
                    sha256=checkpoint.lora.sha256,
                    kind="LoRA",
                    detail={"training_run": run.pk, "step": step},
                )
            )
        dataset = {"id": run.dataset_id, "version": run.dataset.version, "name": run.dataset.name}
    claim = cc.GenerationClaim(
        content_id=f"urn:uuid:{uuid.uuid4()}",
        title=f"validation-run-{run.pk}-step-{step}-{seed}-{condition}.png",
        generator_name="Atelier",
        generator_version=atelier_version(),
        producer=settings.ATELIER_ORGANISATION,
        ingredients=tuple(ingredients),
        dataset=dataset,
        prompt_source={"prompt": prompt},
        details={
            "training_run": run.pk,
            "validation": True,
            "step": step,
            "seed": seed,
            "condition": condition,
        },
    )
    return cc.sign_png(png, claim, signer_config())


# --- copies for download --------------------------------------------------------------------


def fontsource_dir() -> str | None:
    folder = Path(settings.BASE_DIR) / "node_modules" / "@fontsource"
    return str(folder) if folder.is_dir() else None


def mark_wanted(user, *, asked: bool | None = None) -> bool:
    """Whether a download for ``user`` carries the visible mark (per deployment settings)."""
    from generation.selectors import user_is_curator

    if not settings.ATELIER_AI_MARK_DOWNLOADS:
        return bool(asked) and user_is_curator(user)
    if user_is_curator(user):
        return settings.ATELIER_AI_MARK_CURATOR_COPIES if asked is None else asked
    return True


def generated_image_copy(*, image: GeneratedImage, marked: bool, language: str = "en") -> bytes:
    """The bytes a download of ``image`` answers: the signed original, or a marked copy
    signed as an edit of the same content (same content id, the original's hash named)."""
    from PIL import Image

    from archives.services import stored_file_read

    original = stored_file_read(image.file)
    if not marked and cc.png_has_manifest(original):
        return original
    report = cc.read_credentials(original)
    request = image.request
    with Image.open(io.BytesIO(original)) as source:
        source.load()
        chunks = getattr(source, "text", {}) or {}
        text = {k: v for k, v in chunks.items() if k != "XML:com.adobe.xmp"}  # XMP: new below
        pixels = source.convert("RGB")
    edits: tuple[str, ...] = ()
    if marked:
        from generation.diffusion.ai_mark import draw_ai_mark

        pixels, drawn = draw_ai_mark(pixels, language, fontsource_dir=fontsource_dir())
        edits = (f"{MARK_EDIT}: {drawn.text!r}",)
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in text.items():
        info.add_itxt(key, value)
    buffer = io.BytesIO()
    pixels.save(buffer, format="PNG", pnginfo=info)
    claim = generation_claim(
        request=request,
        condition=image.condition,
        seed=image.seed,
        content_id=report.content_id or None,
        edits=edits,
        details={"original_sha256": image.file.sha256},
    )
    return cc.sign_png(buffer.getvalue(), claim, signer_config())


# --- verification ---------------------------------------------------------------------------


@dataclass
class Verification:
    report: cc.CredentialReport
    image: GeneratedImage | None  # the stored image these bytes are, when they are one
    filename: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.report.as_dict(),
            "filename": self.filename,
            "generated_image": self.image.pk if self.image else None,
        }


def credentials_verify(*, data: bytes, filename: str = "") -> Verification:
    """Read the credentials of an uploaded image. Refuses (ValidationError on ``file``) what
    is not one image within the upload limits, decompression bombs included."""
    from heritage import imaging

    try:
        imaging.image_inspect(
            data,
            max_bytes=settings.ATELIER_MAX_IMAGE_BYTES,
            max_pixels=settings.ATELIER_MAX_IMAGE_PIXELS,
        )
    except imaging.ImageRejected as exc:
        raise ValidationError({"file": str(exc)}) from None
    import hashlib

    sha256 = hashlib.sha256(data).hexdigest()
    try:  # naming the stored image is a courtesy: a file verifies without a database
        image = GeneratedImage.objects.filter(file__sha256=sha256).first()
    except DatabaseError:
        image = None
    report = cc.read_credentials(data, trust_anchors_pem=trust_anchors_pem())
    return Verification(report=report, image=image, filename=filename)


def generated_image_verify(*, image: GeneratedImage) -> Verification:
    """Read the credentials of a stored generated image as it is stored now."""
    from archives.services import stored_file_read

    data = stored_file_read(image.file)
    report = cc.read_credentials(data, trust_anchors_pem=trust_anchors_pem())
    return Verification(report=report, image=image, filename=Path(image.file.name).name)
