"""Content credentials (C2PA) for generated PNGs: manifest, signing, reading. No Django here.

A generated image is signed once, when it is stored: a C2PA manifest (c2pa-python, the Content
Authenticity Initiative's library) embedded in a ``caBX`` chunk says it was made by a trained
model (``c2pa.created`` with IPTC's ``trainedAlgorithmicMedia``), by which software, from which
base model and LoRA (ingredients named by their sha256), from which dataset and passage, under
which content id, and for which museum. An XMP packet (``Iptc4xmpExt:DigitalSourceType`` and the
``TC260:AIGC`` implicit label of GB 45438-2025) goes in before signing, so the signature covers
it. Signing adds chunks only: the image data, and so every pixel, stays as rendered.
"""

from __future__ import annotations

import datetime
import io
import json
import struct
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
# A composite of generated images (a contact sheet with its captions).
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
)
# IPTC source types that declare a trained model made (or helped make) the content.
AI_SOURCE_TYPES = {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"}
ASSERTION_LABEL = "org.atelier.generation"
XMP_KEY = b"XML:com.adobe.xmp"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
C2PA_CHUNK = b"caBX"


@dataclass(frozen=True)
class ModelIngredient:
    """A model file the image was made from, identified by its sha256 (no manifest of its own)."""

    title: str
    sha256: str
    kind: str  # "base model" | "LoRA"
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationClaim:
    """What the manifest of one generated image says."""

    content_id: str  # urn:uuid:... (GB 45438's content id, "ProduceID")
    title: str
    generator_name: str
    generator_version: str
    producer: str  # the museum (GB 45438's "ContentProducer")
    ingredients: tuple[ModelIngredient, ...]
    dataset: dict[str, Any] | None = None  # {"id", "version", "name"}
    prompt_source: dict[str, Any] | None = None  # {"passage_id", ...}
    details: dict[str, Any] = field(default_factory=dict)  # request id, seed, condition, ...
    edits: tuple[str, ...] = ()  # descriptions of c2pa.edited actions (the visible mark)
    digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA


@dataclass(frozen=True)
class SignerConfig:
    cert_chain_pem: bytes  # the signing certificate, then its intermediates (not the root)
    key_pem: bytes
    alg: str = "es256"
    tsa_url: str | None = None


# --- PNG chunks -----------------------------------------------------------------------------


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk; ValueError when ``data`` is not a well-formed PNG."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    chunks, at = [], len(PNG_SIGNATURE)
    while at < len(data):
        if at + 8 > len(data):
            raise ValueError("truncated PNG chunk")
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        body = data[at + 8 : at + 8 + length]
        if len(body) != length:
            raise ValueError("truncated PNG chunk")
        chunks.append((kind, body))
        at += 12 + length
    return chunks


def png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    out = [PNG_SIGNATURE]
    for kind, body in chunks:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        out.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc))
    return b"".join(out)


def png_has_manifest(data: bytes) -> bool:
    """Whether a PNG carries an embedded C2PA manifest store (a ``caBX`` chunk)."""
    try:
        return any(kind == C2PA_CHUNK for kind, _ in png_chunks(data))
    except ValueError:
        return False


def xmp_packet(claim: GenerationClaim) -> bytes:
    """IPTC DigitalSourceType and GB 45438-2025's implicit label (TC260 AIGC field names)."""
    from xml.sax.saxutils import escape

    aigc = json.dumps(
        {
            "Label": "1",  # 1 = AI-generated
            "ContentProducer": claim.producer,
            "ProduceID": claim.content_id,
            "ReservedCode1": "",
            "ContentPropagator": claim.producer,
            "PropagateID": claim.content_id,
            "ReservedCode2": "",
        },
        ensure_ascii=False,
    )
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about=""'
        ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"'
        ' xmlns:TC260="http://www.tc260.org.cn/ns/AIGC/1.0/">'
        f"<Iptc4xmpExt:DigitalSourceType>{claim.digital_source_type}</Iptc4xmpExt:DigitalSourceType>"
        f"<xmpMM:DocumentID>{escape(claim.content_id)}</xmpMM:DocumentID>"
        f"<dc:publisher><rdf:Bag><rdf:li>{escape(claim.producer)}</rdf:li></rdf:Bag></dc:publisher>"
        f"<TC260:AIGC>{escape(aigc)}</TC260:AIGC>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="r"?>'
    ).encode()


def png_with_xmp(data: bytes, xmp: bytes) -> bytes:
    """Put ``xmp`` in an iTXt chunk before the image data (replacing an XMP chunk already
    there). Only chunks are added: the IDAT bytes, and so the pixels, are unchanged."""
    itxt = XMP_KEY + b"\x00\x00\x00\x00\x00" + xmp  # uncompressed, no language, no tag
    chunks = [
        (kind, body)
        for kind, body in png_chunks(data)
        if not (kind == b"iTXt" and body.startswith(XMP_KEY + b"\x00"))
    ]
    first_idat = next(i for i, (kind, _) in enumerate(chunks) if kind == b"IDAT")
    chunks.insert(first_idat, (b"iTXt", itxt))
    return png_from_chunks(chunks)


# --- the manifest ---------------------------------------------------------------------------


def manifest_definition(claim: GenerationClaim) -> dict[str, Any]:
    """The c2pa-python manifest definition (JSON) for a generated image."""
    agent = {"name": claim.generator_name, "version": claim.generator_version}
    actions: list[dict[str, Any]] = [
        {
            "action": "c2pa.created",
            "digitalSourceType": claim.digital_source_type,
            "softwareAgent": agent,
            "description": "Generated by a Stable Diffusion model with a LoRA adapter"
            if any(i.kind == "LoRA" for i in claim.ingredients)
            else "Generated by a Stable Diffusion model",
        }
    ]
    actions += [
        {"action": "c2pa.edited", "softwareAgent": agent, "description": text}
        for text in claim.edits
    ]
    ingredients = [
        {
            "title": ingredient.title,
            "format": "application/octet-stream",
            "relationship": "inputTo",
            "instance_id": f"sha256:{ingredient.sha256}",
            "description": ingredient.kind,
            "data_types": [{"type": "c2pa.types.model"}],
            "metadata": {"sha256": ingredient.sha256, "kind": ingredient.kind, **ingredient.detail},
        }
        for ingredient in claim.ingredients
    ]
    generation = {
        "content_id": claim.content_id,
        "ai_generated": True,
        "producer": claim.producer,
        "dataset": claim.dataset,
        "prompt_source": claim.prompt_source,
        "models": [asdict(i) for i in claim.ingredients],
        **claim.details,
    }
    return {
        "claim_generator_info": [agent],
        "title": claim.title,
        "format": "image/png",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": actions}},
            {
                "label": "stds.schema-org.CreativeWork",
                "data": {
                    "@context": "https://schema.org",
                    "@type": "CreativeWork",
                    "identifier": claim.content_id,
                    "producer": {"@type": "Organization", "name": claim.producer},
                },
            },
            {"label": ASSERTION_LABEL, "data": generation},
        ],
        "ingredients": ingredients,
    }


def sign_png(data: bytes, claim: GenerationClaim, signer: SignerConfig) -> bytes:
    """``data`` (a PNG) with the XMP packet and a signed C2PA manifest embedded."""
    import c2pa

    source = png_with_xmp(data, xmp_packet(claim))
    # No thumbnail: it would be a JPEG copy of the image inside the manifest.
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    info = c2pa.C2paSignerInfo(signer.alg, signer.cert_chain_pem, signer.key_pem, signer.tsa_url)
    with c2pa.Signer.from_info(info) as c2pa_signer:
        builder = c2pa.Builder(manifest_definition(claim), context=context)
        out = io.BytesIO()
        builder.sign(c2pa_signer, "image/png", io.BytesIO(source), out)
    return out.getvalue()


# --- reading --------------------------------------------------------------------------------


@dataclass
class CredentialReport:
    """What a verifier found: who made it, from what, and whether it still holds."""

    has_manifest: bool
    state: str = "none"  # none | Invalid | Valid | Trusted (c2pa's validation state)
    signature_valid: bool = False
    hash_valid: bool = False
    trusted: bool = False
    ai_generated: bool = False
    digital_source_type: str = ""
    signer: str = ""
    issuer: str = ""
    signed_at: str = ""
    claim_generator: str = ""
    producer: str = ""
    content_id: str = ""
    title: str = ""
    actions: list[dict[str, Any]] = field(default_factory=list)
    ingredients: list[dict[str, Any]] = field(default_factory=list)
    generation: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    error: str = ""

    @property
    def intact(self) -> bool:
        return self.has_manifest and self.signature_valid and self.hash_valid

    def summary(self) -> str:
        if not self.has_manifest:
            return self.error or "No content credentials in this file."
        if not self.intact:
            what = "; ".join(f["explanation"] or f["code"] for f in self.failures) or self.error
            return f"Content credentials do NOT hold: the file was changed after signing ({what})."
        trust = "a trusted certificate" if self.trusted else "a certificate not on the trust list"
        made = "AI-generated" if self.ai_generated else "not declared AI-generated"
        return f"Content credentials hold: {made}, signed by {self.signer or '?'} with {trust}."

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "intact": self.intact, "summary": self.summary()}


def _agent_name(agent: Any) -> str:
    if isinstance(agent, dict):
        return " ".join(str(agent.get(k, "")) for k in ("name", "version")).strip()
    return str(agent or "")


def read_credentials(data: bytes, *, trust_anchors_pem: str = "") -> CredentialReport:
    """Read and validate the manifest of ``data`` (any format c2pa reads), checking the
    signing certificate against ``trust_anchors_pem`` (PEM roots; empty: none trusted)."""
    import c2pa

    settings: dict[str, Any] = {"verify": {"verify_trust": bool(trust_anchors_pem)}}
    if trust_anchors_pem:
        settings["trust"] = {"user_anchors": trust_anchors_pem}
    try:
        context = c2pa.Context.from_dict(settings)
        reader = c2pa.Reader.try_create(None, io.BytesIO(data), None, context)
        if reader is None:  # no manifest (no JUMBF) in the file
            return CredentialReport(has_manifest=False)
        with reader:
            store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        return CredentialReport(has_manifest=False, error=f"Not readable: {exc}")
    return report_of_store(store)


def report_of_store(store: dict[str, Any]) -> CredentialReport:
    """A ``CredentialReport`` from a Reader's manifest store JSON."""
    manifest = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    success = {entry.get("code", "") for entry in results.get("success", [])}
    failures = [
        {"code": e.get("code", ""), "explanation": e.get("explanation", "")}
        for e in results.get("failure", []) or store.get("validation_status", []) or []
    ]
    failed = {f["code"] for f in failures}
    state = store.get("validation_state") or ("Invalid" if failures else "Valid")
    report = CredentialReport(has_manifest=bool(manifest), state=state, failures=failures)
    report.signature_valid = "claimSignature.validated" in success and not any(
        code.startswith("claimSignature.") for code in failed
    )
    report.hash_valid = not any(
        code.startswith(("assertion.dataHash", "assertion.boxesHash", "assertion.hashedURI"))
        or code.endswith(".mismatch")
        for code in failed
    ) and any(code.startswith("assertion.") and code.endswith(".match") for code in success)
    report.trusted = "signingCredential.trusted" in success
    info = manifest.get("signature_info") or {}
    report.signer = info.get("common_name", "")
    report.issuer = info.get("issuer", "")
    report.signed_at = info.get("time", "")
    report.title = manifest.get("title", "")
    report.claim_generator = ", ".join(
        _agent_name(g) for g in manifest.get("claim_generator_info", [])
    )
    for assertion in manifest.get("assertions", []):
        label, body = assertion.get("label", ""), assertion.get("data") or {}
        if label.startswith("c2pa.actions"):
            for action in body.get("actions", []):
                report.actions.append(
                    {
                        "action": action.get("action", ""),
                        "digital_source_type": action.get("digitalSourceType", ""),
                        "software_agent": _agent_name(action.get("softwareAgent")),
                        "description": action.get("description", ""),
                    }
                )
                if action.get("action") == "c2pa.created":
                    report.digital_source_type = action.get("digitalSourceType", "")
        elif label == ASSERTION_LABEL:
            report.generation = body
            report.content_id = str(body.get("content_id", ""))
        elif label == "stds.schema-org.CreativeWork":
            report.producer = str((body.get("producer") or {}).get("name", ""))
            report.content_id = report.content_id or str(body.get("identifier", ""))
    report.ai_generated = report.digital_source_type.rsplit("/", 1)[-1] in AI_SOURCE_TYPES
    for ingredient in manifest.get("ingredients", []):
        metadata = ingredient.get("metadata") or {}
        report.ingredients.append(
            {
                "title": ingredient.get("title", ""),
                "relationship": ingredient.get("relationship", ""),
                "kind": metadata.get("kind", ingredient.get("description", "")),
                "sha256": metadata.get("sha256", "")
                or str(ingredient.get("instance_id", "")).removeprefix("sha256:"),
            }
        )
    return report


# --- a development certificate chain --------------------------------------------------------


@dataclass(frozen=True)
class DevChain:
    root_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def dev_chain_create(organisation: str, *, days: int = 365) -> DevChain:
    """A root CA and a signing certificate under it (EC P-256), made here and trusted by
    nobody else: enough for c2pa to sign and verify, not for a public verifier to trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common_name: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation[:64]),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "DEVELOPMENT, NOT TRUSTED"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )

    def usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )

    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder()
        .subject_name(name("Atelier development root CA"))
        .issuer_name(name("Atelier development root CA"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days * 10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign=False, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("Atelier development signer"))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign=True, ca=False), critical=True)
        # C2PA signing certificates need an extended key usage it accepts (emailProtection).
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return DevChain(
        root_pem=root.public_bytes(pem),
        cert_pem=cert.public_bytes(pem),
        key_pem=key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
