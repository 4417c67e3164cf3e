"""Writes of the evaluation app: panels, studies (with blind copies and assignments), ratings,
automated metrics and the memorisation check."""

from __future__ import annotations

import io
import random
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from archives.models import StoredFile
from archives.services import atomic_with_files, stored_file_read, stored_file_save
from evaluation import distribution, metrics
from evaluation.models import (
    Assignment,
    Dimension,
    MemorisationCheck,
    MetricResult,
    Panel,
    Rating,
    RatingChange,
    Study,
    StudyItem,
    StudyReference,
)
from generation.diffusion.content_credentials import png_has_manifest
from generation.models import GeneratedImage
from heritage.models import ItemImage, TrainingDataset
from jobs.models import Job
from jobs.queue import job_enqueue, job_progress

EXPERT_GROUP = "expert"
REFERENCE_CONDITION = "reference"


class StudyClosed(PermissionDenied):
    """Ratings can no longer change: the study is closed."""


def _save(instance) -> None:
    instance.full_clean()
    instance.save()


# --- panels -------------------------------------------------------------------------------


def panel_create(
    *, name: str, members: Iterable[User] = (), description: str = "", user=None
) -> Panel:
    members = list(members)
    not_experts = [m.get_username() for m in members if not m.groups.filter(name=EXPERT_GROUP)]
    if not_experts:
        raise ValidationError({"members": f"not in the expert group: {', '.join(not_experts)}"})
    with transaction.atomic():
        panel = Panel(name=name, description=description)
        if getattr(user, "is_authenticated", False):
            panel.created_by = user
        _save(panel)
        panel.members.set(members)
    return panel


def panel_members_set(*, panel: Panel, members: Iterable[User]) -> Panel:
    """Replace a panel's members (experts only). Studies already made keep their assignments:
    an expert taken off the panel still sees the studies they were assigned."""
    members = list(members)
    not_experts = [m.get_username() for m in members if not m.groups.filter(name=EXPERT_GROUP)]
    if not_experts:
        raise ValidationError({"members": f"not in the expert group: {', '.join(not_experts)}"})
    with transaction.atomic():
        panel.members.set(members)
    return panel


# --- studies ------------------------------------------------------------------------------


def strip_image(data: bytes, size: tuple[int, int] | None = None) -> tuple[bytes, int, int]:
    """Re-encode as a plain RGB PNG: no text chunks (A1111 parameters, provenance), no EXIF,
    no ICC profile; optionally centre-cropped to ``size`` so references look like the rest."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        if size is not None and im.size != tuple(size):
            im = ImageOps.fit(im, tuple(size), method=Image.Resampling.LANCZOS)
        clean = Image.new("RGB", im.size)
        clean.paste(im)  # a fresh image carries no .info from the source
        buffer = io.BytesIO()
        clean.save(buffer, format="PNG", optimize=False)
        return buffer.getvalue(), clean.width, clean.height


def _blind_copy(data: bytes, size: tuple[int, int] | None = None) -> tuple[StoredFile, int, int]:
    png, width, height = strip_image(data, size)
    # Content credentials name the model, the LoRA and the condition: an expert copy carries
    # none (strip_image re-encodes the pixels only; this guards that it stays so).
    if png_has_manifest(png) or b"XML:com.adobe.xmp" in png:
        raise ValueError("A blind copy must carry no content credentials or XMP.")
    # A random storage name: nothing about the source, condition or study in it.
    name = f"evaluation/blind/{secrets.token_hex(16)}.png"
    return stored_file_save(name=name, content=png, content_type="image/png"), width, height


def _without_trigger(prompt: str, trigger: str) -> str:
    if trigger and prompt.startswith(trigger):
        prompt = prompt[len(trigger) :].lstrip(" ,")
    return prompt


def shown_prompt(image: GeneratedImage) -> str:
    """The prompt experts see: the curator's words, without a LoRA trigger token (which would
    tell LoRA images apart if only they carried it)."""
    request = image.request
    if request.prompt:
        text = request.prompt
    elif request.passage_id and request.passage.approved_prompt:
        text = request.passage.approved_prompt
    else:
        text = image.prompt
    run = request.training_run
    return _without_trigger(text.strip(), run.trigger_token if run else "")


def _group_key(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()[:300]


def _reference_prompt(image: ItemImage) -> tuple[str, Any]:
    passage = image.item.passages.exclude(approved_prompt="").first()
    if passage:
        return passage.approved_prompt, passage
    title = image.item.title or {}
    return title.get("en") or next(iter(title.values()), ""), None


def _assign(
    study: Study, experts: Sequence[User], items: Sequence[StudyItem], rng: random.Random
) -> None:
    """Every expert rates every item, or each prompt group goes to the ``raters_per_item``
    least-loaded experts (so the same raters see both conditions of a prompt); then each
    expert's items are shuffled with the study's seed and stored with their positions."""
    per_expert: dict[int, list[StudyItem]] = defaultdict(list)
    if study.assignment_mode == Study.AssignmentMode.ALL:
        for expert in experts:
            per_expert[expert.pk] = list(items)
    else:
        groups: dict[str, list[StudyItem]] = defaultdict(list)
        for item in items:
            groups[item.group].append(item)
        keys = sorted(groups)
        rng.shuffle(keys)
        load = {e.pk: 0 for e in experts}
        for key in keys:
            ranked = sorted(load, key=lambda pk: (load[pk], rng.random()))
            for pk in ranked[: study.raters_per_item]:
                per_expert[pk].extend(groups[key])
                load[pk] += len(groups[key])
    rows = []
    for expert in experts:
        mine = list(per_expert[expert.pk])
        rng.shuffle(mine)
        rows += [
            Assignment(study=study, expert=expert, item=item, position=i + 1)
            for i, item in enumerate(mine)
        ]
    Assignment.objects.bulk_create(rows)


def _lock_images(image_ids) -> list[int]:
    """Row-lock these generated images (waiting for approvals being written) and return their
    ids; read them with a new query after this (under READ COMMITTED it sees those writes)."""
    return list(
        GeneratedImage.objects.select_for_update()
        .filter(pk__in=image_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _refuse_public(image_ids: Iterable[int]) -> None:
    public = sorted(image_ids)
    if public:
        # Approved images are public with their condition: an expert could match them.
        raise ValidationError(
            {"generated_images": f"already approved for the kiosk (public): {public}"}
        )


def study_create(
    *,
    title: str,
    panel: Panel,
    generated_images: Iterable[GeneratedImage],
    reference_images: Iterable[ItemImage] = (),
    assignment_mode: str = Study.AssignmentMode.ALL,
    raters_per_item: int = 3,
    reference_condition: str = "base",
    description: str = "",
    instructions: str = "",
    seed: int | None = None,
    calibration_expected: Mapping[str, Sequence[int]] | None = None,
    user=None,
) -> Study:
    """A study of generated images (grouped by prompt, condition hidden) and optional real
    reference images as calibration items; blind copies and per-expert orders are made here.

    LoRA images of different runs get conditions of their own (``lora:<run id>``) so the
    report never pools two LoRAs. Calibration items carry their known answer
    (``calibration_expected``, default CALIBRATION_EXPECTED): an expert outside it fails the
    attention check. The metric references start as the default (``study_references_default``)
    and can be changed with ``study_references_set``."""
    generated = list(generated_images)
    references = list(reference_images)
    if not generated:
        raise ValidationError({"generated_images": "a study needs at least one generated image"})
    if len({g.pk for g in generated}) != len(generated):
        raise ValidationError({"generated_images": "an image is listed twice"})
    if len({r.pk for r in references}) != len(references):
        raise ValidationError({"reference_images": "an image is listed twice"})
    _refuse_public(g.pk for g in generated if g.approved)
    experts = list(panel.members.filter(groups__name=EXPERT_GROUP).order_by("pk"))
    if not experts:
        raise ValidationError({"panel": "the panel has no experts"})
    if assignment_mode == Study.AssignmentMode.BALANCED and raters_per_item > len(experts):
        raise ValidationError(
            {
                "raters_per_item": f"{raters_per_item} raters per item, but the panel has "
                f"{len(experts)} experts"
            }
        )
    seed = secrets.randbits(48) if seed is None else seed
    rng = random.Random(seed)
    # Serve every image (generated and reference) at the generated images' most common size.
    sizes = defaultdict(int)
    for g in generated:
        sizes[(g.width, g.height)] += 1
    frame = max(sizes, key=sizes.get) if sizes else None
    if frame is not None and 0 in frame:
        frame = None

    with atomic_with_files():
        # Re-check under row locks: an approval running now either finished (seen here) or
        # waits and then sees this study's items (generated_image_approve re-checks too).
        ids = _lock_images([g.pk for g in generated])
        _refuse_public(
            GeneratedImage.objects.filter(pk__in=ids, approved=True).values_list("pk", flat=True)
        )
        study = Study(
            title=title,
            description=description,
            instructions=instructions,
            panel=panel,
            assignment_mode=assignment_mode,
            raters_per_item=raters_per_item,
            reference_condition=reference_condition,
            seed=seed,
        )
        if getattr(user, "is_authenticated", False):
            study.created_by = user
        _save(study)
        items: list[StudyItem] = []
        prompts_by_group: dict[str, str] = {}
        lora_runs = {
            g.request.training_run_id
            for g in generated
            if g.condition == GeneratedImage.Condition.LORA
        }
        expected = dict(
            CALIBRATION_EXPECTED if calibration_expected is None else calibration_expected
        )
        for image in generated:
            text = shown_prompt(image)
            key = _group_key(text)
            text = prompts_by_group.setdefault(key, text)  # one wording per group
            # At the common frame too: a size of its own would tell its condition apart.
            blind, width, height = _blind_copy(stored_file_read(image.file), frame)
            item = StudyItem(
                study=study,
                kind=StudyItem.Kind.GENERATED,
                generated=image,
                condition=(
                    f"lora:{image.request.training_run_id}"
                    if image.condition == GeneratedImage.Condition.LORA and len(lora_runs) > 1
                    else image.condition
                ),
                group=key,
                prompt=text,
                passage=image.passage or image.request.passage,
                blind=blind,
                width=width,
                height=height,
            )
            _save(item)
            items.append(item)
        for image in references:
            text, passage = _reference_prompt(image)
            source = image.display if image.display_id else image.original
            blind, width, height = _blind_copy(stored_file_read(source), frame)
            item = StudyItem(
                study=study,
                kind=StudyItem.Kind.REFERENCE,
                reference=image,
                condition=REFERENCE_CONDITION,
                group=f"reference:{image.pk}",
                prompt=text,
                passage=passage,
                blind=blind,
                width=width,
                height=height,
                expected={d: [int(v) for v in r] for d, r in expected.items()},
            )
            _save(item)
            items.append(item)
        _assign(study, experts, items, rng)
        StudyReference.objects.bulk_create(
            StudyReference(study=study, image=image, added_by=study.created_by)
            for image in study_references_default(study)
        )
    return study


# --- metric references --------------------------------------------------------------------

# A real heritage image shown blind is in the heritage style: a careful expert scores its style
# 4 or 5. Others may be set per study (study_create(calibration_expected=...)).
CALIBRATION_EXPECTED: dict[str, list[int]] = {Dimension.STYLE: [4, 5]}
SPLIT_TRAIN, SPLIT_VALIDATION, SPLIT_NONE = "train", "validation", "none"


def study_runs(study: Study):
    """The training runs whose requests made the study's generated images."""
    from generation.models import TrainingRun

    return TrainingRun.objects.filter(
        pk__in=study.items.filter(generated__request__training_run__isnull=False).values(
            "generated__request__training_run"
        )
    ).select_related("dataset")


def reference_splits(study: Study, image_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """For each image: ``split`` ("train" when it is in any compared run's training split,
    else "validation" when in a validation split, else "none") and where (``datasets``)."""
    from heritage.models import TrainingExample

    ids = list(image_ids)
    out = {pk: {"split": SPLIT_NONE, "datasets": []} for pk in ids}
    dataset_ids = {run.dataset_id for run in study_runs(study)}
    for ex in TrainingExample.objects.filter(dataset_id__in=dataset_ids, image_id__in=ids):
        entry = out[ex.image_id]
        entry["datasets"].append({"dataset": ex.dataset_id, "split": ex.split})
        if ex.split == TrainingExample.Split.TRAIN:
            entry["split"] = SPLIT_TRAIN
        elif entry["split"] == SPLIT_NONE:
            entry["split"] = SPLIT_VALIDATION
    return out


def study_references_default(study: Study) -> list[ItemImage]:
    """The held-out validation images of the compared runs' datasets (never a training image
    of another compared run)."""
    from heritage.models import TrainingExample

    dataset_ids = {run.dataset_id for run in study_runs(study)}
    ids = set(
        TrainingExample.objects.filter(
            dataset_id__in=dataset_ids, split=TrainingExample.Split.VALIDATION
        ).values_list("image_id", flat=True)
    )
    splits = reference_splits(study, ids)
    keep = [pk for pk in sorted(ids) if splits[pk]["split"] == SPLIT_VALIDATION]
    return list(ItemImage.objects.filter(pk__in=keep).order_by("pk"))


def study_references_set(
    *, study: Study, image_ids: Iterable[int], user=None
) -> list[StudyReference]:
    """Declare the study's metric references (replacing the previous ones).

    Unknown ids are refused and nothing changes. A training image of a compared run is kept
    (reported as split "train", flagged) but used only by the reproduction protocol, never
    by the held-out or distribution metrics. Metrics already computed against references no
    longer declared are deleted; recompute to fill the new ones.
    """
    raw = list(image_ids)
    bad = [v for v in raw if isinstance(v, bool) or not str(v).strip().isdigit()]
    if bad:
        raise ValidationError({"image_ids": f"not image ids: {bad}"})
    ids = sorted({int(v) for v in raw})
    found = set(ItemImage.objects.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise ValidationError({"image_ids": f"no catalogue image with id {missing}"})
    added_by = user if getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        Study.objects.select_for_update().filter(pk=study.pk).first()
        study.references.exclude(image_id__in=ids).delete()
        MetricResult.objects.filter(study=study).exclude(reference_id__in=ids).delete()
        have = set(study.references.values_list("image_id", flat=True))
        for pk in ids:
            if pk not in have:
                _save(StudyReference(study=study, image_id=pk, added_by=added_by))
    return list(study.references.select_related("image__item"))


def study_pairings(study: Study) -> list[dict[str, Any]]:
    """Which generated image is compared with which reference, under which protocol.

    A generated image made for a reference's item (its item, or an item of its passage) is
    paired with that reference: a training image of a compared run gives a *reproduction*
    pair (000_799139077b62291c's protocol: how closely the LoRA redraws what it saw), any
    other a *held-out* pair. An image made for none of the references is paired with every
    held-out reference. Training images are never held-out pairs.
    """
    refs = list(study.references.select_related("image__item"))
    splits = reference_splits(study, [r.image_id for r in refs])
    held_out = [r.image for r in refs if splits[r.image_id]["split"] != SPLIT_TRAIN]
    out = []
    items = study.items.filter(kind=StudyItem.Kind.GENERATED).select_related(
        "generated__request", "generated__passage"
    )
    for item in items:
        image = item.generated
        passage = image.passage or image.request.passage
        linked_items = {image.item_id} if image.item_id else set()
        if passage is not None:
            linked_items |= set(passage.items.values_list("pk", flat=True))
        linked = [r.image for r in refs if r.image.item_id in linked_items]
        chosen = linked or held_out
        for ref in chosen:
            split = splits[ref.pk]["split"]
            out.append(
                {
                    "item": item,
                    "generated": image,
                    "reference": ref,
                    "condition": item.condition,
                    "run_id": image.request.training_run_id,
                    "split": split,
                    "protocol": (
                        MetricResult.Protocol.REPRODUCTION
                        if split == SPLIT_TRAIN
                        else MetricResult.Protocol.HELD_OUT
                    ),
                    "linked": bool(linked),
                }
            )
    return out


def study_close(*, study: Study) -> Study:
    study.status = Study.Status.CLOSED
    study.closed_at = timezone.now()
    _save(study)
    return study


def study_reopen(*, study: Study) -> list[GeneratedImage]:
    """Open the study again and withdraw the kiosk approval of its generated images.

    An approved image is public with its condition; a study that rates it blind again would
    let its experts match it. Returns the withdrawn images (empty when none was approved) so
    the caller can tell the curator which ones left the kiosk.
    """
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        locked.status = Study.Status.OPEN
        locked.closed_at = None
        _save(locked)
        # Lock every image of the study (not only approved ones: a row an approval is writing
        # now would not match "approved" yet), then read them again. An approval either
        # finished first (read here and withdrawn) or waits and sees this study open.
        ids = _lock_images(locked.items.filter(generated__isnull=False).values("generated_id"))
        withdrawn = list(GeneratedImage.objects.filter(pk__in=ids, approved=True).order_by("pk"))
        for image in withdrawn:
            image.approved, image.approved_by, image.approved_at = False, None, None
            image.save(update_fields=["approved", "approved_by", "approved_at"])
    study.status, study.closed_at = locked.status, locked.closed_at
    return withdrawn


def withdrawn_message(images: Sequence[GeneratedImage]) -> str:
    """What the curator is told after reopening a study (names the images that left the kiosk)."""
    if not images:
        return "The study is open again."
    names = ", ".join(str(image) for image in images)
    return (
        f"The study is open again. Kiosk approval withdrawn from {len(images)} of its images "
        f"(experts rate them blind again): {names}."
    )


# --- ratings ------------------------------------------------------------------------------


def rating_submit(
    *,
    expert: User,
    item: StudyItem,
    scores: Mapping[str, int],
    comments: Mapping[str, str] | None = None,
) -> list[Rating]:
    """Save an expert's scores of one item (any subset of the four dimensions).

    Every score or comment that changes (and every first score) is kept as a RatingChange:
    who, when, old -> new; the report's audit lists the changes of saved scores.

    Safe under concurrency: each (item, expert, dimension) row is updated, or inserted under a
    savepoint; an insert that loses a race to the unique constraint becomes an update (last
    write wins), so nothing is lost and nothing is duplicated. The first statement of the
    transaction is a write, so SQLite takes its write lock up front instead of failing to
    upgrade a read lock; on PostgreSQL the unique index serialises racing inserts.
    """
    comments = dict(comments or {})
    if not Assignment.objects.filter(expert=expert, item=item).exists():
        raise PermissionDenied("this item is not assigned to you")
    if not scores:
        raise ValidationError({"scores": "give at least one score"})
    unknown = set(scores) - set(Dimension.values) | set(comments) - set(Dimension.values)
    if unknown:
        raise ValidationError({"scores": f"unknown dimension(s): {', '.join(sorted(unknown))}"})
    clean: dict[str, tuple[int, str]] = {}
    for dimension, score in scores.items():
        try:
            value = int(score)
        except (TypeError, ValueError):
            raise ValidationError({dimension: "the score must be a whole number 1-5"}) from None
        if isinstance(score, float) and score != value:
            raise ValidationError({dimension: "the score must be a whole number 1-5"})
        candidate = Rating(
            study_id=item.study_id,
            item=item,
            expert=expert,
            dimension=dimension,
            score=value,
            comment=(comments.get(dimension) or "").strip(),
        )
        try:
            candidate.full_clean(validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            raise ValidationError({dimension: exc.messages}) from None
        clean[dimension] = (value, candidate.comment)

    now = timezone.now()
    with transaction.atomic():
        # A write first (SQLite takes its write lock; PostgreSQL row-locks the saved rows), so
        # the old values read next cannot change before the history row records them.
        Rating.objects.filter(item=item, expert=expert, dimension__in=list(clean)).update(
            updated_at=now
        )
        saved = {
            r.dimension: r
            for r in Rating.objects.filter(item=item, expert=expert, dimension__in=list(clean))
        }
        changes = []
        for dimension, (value, comment) in sorted(clean.items()):
            old = saved.get(dimension)
            if old is None or old.score != value or old.comment != comment:
                changes.append(
                    RatingChange(
                        study_id=item.study_id,
                        item=item,
                        expert=expert,
                        dimension=dimension,
                        old_score=old.score if old else None,
                        new_score=value,
                        old_comment=old.comment if old else "",
                        new_comment=comment,
                    )
                )
        RatingChange.objects.bulk_create(changes)
        for dimension, (value, comment) in sorted(clean.items()):
            mine = Rating.objects.filter(item=item, expert=expert, dimension=dimension)
            if mine.update(score=value, comment=comment, updated_at=now):
                continue
            try:
                with transaction.atomic():
                    Rating.objects.create(
                        study_id=item.study_id,
                        item=item,
                        expert=expert,
                        dimension=dimension,
                        score=value,
                        comment=comment,
                    )
            except IntegrityError:
                mine.update(score=value, comment=comment, updated_at=now)
        # Checked after the writes, inside the transaction: a close that committed first wins.
        if not Study.objects.filter(pk=item.study_id, status=Study.Status.OPEN).exists():
            raise StudyClosed("the study is closed; ratings can no longer change")
    return list(Rating.objects.filter(item=item, expert=expert, dimension__in=list(clean)))


# --- automated metrics --------------------------------------------------------------------


def _rgb(stored: StoredFile, size: tuple[int, int] | None = None):
    from PIL import Image

    with Image.open(io.BytesIO(stored_file_read(stored))) as im:
        return metrics.as_rgb_array(im, size)


def _reference_pixels(image: ItemImage, size: tuple[int, int]) -> np.ndarray:
    """A catalogue image as the metrics compare it: the display derivative (else the original),
    centre-cropped and resized to ``size``."""
    return _rgb(image.display if image.display_id else image.original, size)


REFERENCE_OTHERS = "reference: training images"
REFERENCE_FLAT = "reference: flat mean colour"


def reference_metric_rows(
    *, originals: Sequence[ItemImage], others: Sequence[ItemImage], size: tuple[int, int]
) -> list[dict[str, Any]]:
    """Rows in ``metric_summary``'s format for images no model drew, to read a study's metrics
    by: every one of ``others`` (a LoRA's training images: its style in other layouts) against
    every original but itself, and a flat image of each original's mean colour."""
    pixels = {img.pk: _reference_pixels(img, size) for img in {*originals, *others}}
    refs = metrics.reference_summaries([pixels[o.pk] for o in originals], [])
    rows = []
    pairs = [(o, r) for r in originals for o in others if o.pk != r.pk]
    if pairs:
        summary = metrics.summarise(
            metrics.pair_metrics(
                np.stack([pixels[o.pk] for o, _ in pairs]),
                np.stack([pixels[r.pk] for _, r in pairs]),
            )
        )
        rows.append({"condition": REFERENCE_OTHERS, **summary.__dict__})
    rows.append({"condition": REFERENCE_FLAT, **refs["flat"].__dict__})
    return rows


def study_reference_rows(study: Study) -> list[dict[str, Any]]:
    """Reference rows for a study: its held-out references against the training images of the
    LoRAs that made its images (up to MAX_REFERENCE_OTHERS, a seeded sample past that) and
    against flat images, at the generated images' usual size."""
    from collections import Counter

    from heritage.selectors import dataset_examples

    generated = [
        item.generated
        for item in study.items.filter(kind=StudyItem.Kind.GENERATED).select_related(
            "generated__request__training_run"
        )
    ]
    if not generated:
        return []
    size = Counter((g.width, g.height) for g in generated).most_common(1)[0][0]
    originals = {r.pk: r for r in held_out_references(study)}
    if not originals:
        return []
    datasets = {g.request.training_run.dataset_id for g in generated if g.request.training_run}
    others = {
        ex.image.pk: ex.image
        for ds in TrainingDataset.objects.filter(pk__in=datasets)
        for ex in dataset_examples(ds, split="train").select_related("image__original")
    }
    chosen = sorted(others)
    if len(chosen) > metrics.MAX_REFERENCE_OTHERS:
        chosen = sorted(random.Random(study.seed).sample(chosen, metrics.MAX_REFERENCE_OTHERS))
    return reference_metric_rows(
        originals=[originals[pk] for pk in sorted(originals)],
        others=[others[pk] for pk in chosen],
        size=size,
    )


def held_out_references(study: Study) -> list[ItemImage]:
    """The declared references outside every compared run's training split."""
    refs = list(study.references.select_related("image__original", "image__display"))
    splits = reference_splits(study, [r.image_id for r in refs])
    return [r.image for r in refs if splits[r.image_id]["split"] != SPLIT_TRAIN]


def metric_results_compute(
    *, study: Study, job: Job | None = None, progress=None
) -> list[MetricResult]:
    """MSE/PSNR/SSIM of every pair of ``study_pairings`` (each reference centre-cropped and
    resized to the generated image's size), with its protocol and run; pairs of references
    no longer declared are deleted."""
    pairs = study_pairings(study)
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for pair in pairs:
        by_image[pair["generated"].pk].append(pair)
    results: list[MetricResult] = []
    keep: set[int] = set()
    for n, (_pk, mine) in enumerate(sorted(by_image.items())):
        image = mine[0]["generated"]
        gen = _rgb(image.file)
        size = (gen.shape[1], gen.shape[0])
        ref_arrays = [_reference_pixels(p["reference"], size) for p in mine]
        measured = metrics.pair_metrics(np.stack([gen] * len(mine)), np.stack(ref_arrays))
        with transaction.atomic():
            for pair, pm in zip(mine, measured, strict=True):
                row, _ = MetricResult.objects.update_or_create(
                    study=study,
                    generated=image,
                    reference=pair["reference"],
                    defaults={
                        "condition": pair["condition"],
                        "protocol": pair["protocol"],
                        "run_id": pair["run_id"],
                        "mse": pm.mse,
                        "psnr": pm.psnr,
                        "ssim": pm.ssim,
                        "identical": pm.identical,
                        "width": size[0],
                        "height": size[1],
                        "job": job,
                    },
                )
                keep.add(row.pk)
                results.append(row)
        if progress is not None:
            progress((n + 1) / max(len(by_image), 1), f"metrics {n + 1}/{len(by_image)}")
    MetricResult.objects.filter(study=study).exclude(pk__in=keep).delete()
    return results


def distribution_rows(study: Study) -> list[dict[str, Any]]:
    """The distribution protocol, per run and condition: the generated set against the held-out
    references (SWD over patches, colour distance, the KID/CLIP slot), at the generated
    images' size."""
    from django.conf import settings

    refs = held_out_references(study)
    if not refs:
        return []
    groups: dict[tuple[int | None, str], list[GeneratedImage]] = defaultdict(list)
    items = study.items.filter(kind=StudyItem.Kind.GENERATED).select_related(
        "generated__file", "generated__request"
    )
    for item in items:
        groups[(item.generated.request.training_run_id, item.condition)].append(item.generated)
    weights = getattr(settings, "EVALUATION_FEATURE_WEIGHTS", "") or None
    extractor = getattr(settings, "EVALUATION_FEATURE_EXTRACTOR", "")
    rows = []
    for (run_id, condition), images in sorted(
        groups.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1])
    ):
        arrays = [_rgb(g.file) for g in images]
        size = (arrays[0].shape[1], arrays[0].shape[0])
        arrays = [
            a if (a.shape[1], a.shape[0]) == size else _rgb(g.file, size)
            for a, g in zip(arrays, images, strict=True)
        ]
        ref_arrays = [_reference_pixels(r, size) for r in refs]
        result = distribution.compare_sets(
            arrays, ref_arrays, seed=study.seed % 2**32, weights=weights, extractor=extractor
        )
        rows.append({"protocol": "distribution", "run": run_id, "condition": condition, **result})
    return rows


def _training_dataset(image: GeneratedImage) -> TrainingDataset | None:
    run = image.request.training_run
    return run.dataset if run is not None else None


def memorisation_check_images(
    *,
    generated_image_ids: Iterable[int],
    ssim_threshold: float = metrics.NEAR_COPY_SSIM,
    hash_threshold: int = metrics.NEAR_COPY_HASH,
) -> dict[int, MemorisationCheck]:
    """Nearest training image (the LoRA's dataset) for each generated image; near copies are
    flagged. Images without a LoRA dataset are recorded as checked against nothing."""
    from heritage.selectors import dataset_examples

    images = list(
        GeneratedImage.objects.filter(pk__in=list(generated_image_ids)).select_related(
            "file", "request__training_run__dataset"
        )
    )
    cache: dict[int, tuple[list, list, list]] = {}
    out: dict[int, MemorisationCheck] = {}
    for image in images:
        dataset = _training_dataset(image)
        if dataset is not None and dataset.pk not in cache:
            examples = list(dataset_examples(dataset))
            thumbs, hashes = [], []
            for ex in examples:
                arr = _rgb(ex.crop if ex.crop_id else ex.image.original)
                thumbs.append(metrics.grey_thumbnail(arr))
                hashes.append(metrics.dhash(arr))
            cache[dataset.pk] = (examples, thumbs, hashes)
        examples, thumbs, hashes = cache.get(dataset.pk if dataset else -1, ([], [], []))
        arr = _rgb(image.file)
        (match,) = metrics.nearest_training(
            [metrics.grey_thumbnail(arr)],
            thumbs,
            generated_hashes=[metrics.dhash(arr)],
            training_hashes=hashes,
            ssim_threshold=ssim_threshold,
            hash_threshold=hash_threshold,
        )
        check, _ = MemorisationCheck.objects.update_or_create(
            generated=image,
            defaults={
                "dataset": dataset,
                "nearest": examples[match.index] if match else None,
                "similarity": match.ssim if match else None,
                "hash_distance": match.hash_distance if match else None,
                "near_copy": bool(match and match.near_copy),
                "n_compared": len(examples),
                "ssim_threshold": ssim_threshold,
                "hash_threshold": hash_threshold,
            },
        )
        out[image.pk] = check
    return out


def study_request_metrics(*, study: Study, user=None) -> Job:
    """Queue the ``evaluation.metrics`` job (default queue) for a study."""
    return job_enqueue(kind="evaluation.metrics", params={"study_id": study.pk}, user=user)


def study_metrics_run(*, study: Study, job: Job) -> dict[str, Any]:
    """The job's body: pair metrics, then the memorisation check of every generated image."""
    results = metric_results_compute(
        study=study, job=job, progress=lambda f, m: job_progress(job, 0.7 * f, m)
    )
    job_progress(job, 0.7, "reference rows (training images and flat images)")
    study.metric_references = study_reference_rows(study)
    job_progress(job, 0.75, "distribution protocol (sliced Wasserstein, colour)")
    study.metric_distribution = distribution_rows(study)
    study.save(update_fields=["metric_references", "metric_distribution"])
    job_progress(job, 0.8, "memorisation check")
    ids = list(study.items.filter(kind="generated").values_list("generated_id", flat=True))
    checks = memorisation_check_images(generated_image_ids=ids)
    job_progress(job, 1.0, "memorisation check done")
    return {
        "study_id": study.pk,
        "pairs": len(results),
        "checked": len(checks),
        "near_copies": sorted(pk for pk, c in checks.items() if c.near_copy),
    }
