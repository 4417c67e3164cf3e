"""Validate a BagIt bag that arrives as a tar or zip archive, safely.

The archive's member list (zip central directory, tar headers) is read and every member
checked BEFORE anything is extracted or shown to the ``bagit`` library: names (no absolute
paths, no ``..``, no backslashes or control characters, no duplicates, one bag root), member
types (regular files and folders only: no symlinks, hard links or devices) and the sizes they
declare (per file, in total, member count, and the compression ratio, so a small zip bomb is
refused without a byte written; limits in ``BagLimits``, from settings). Only then are the
members copied, one by one and byte-counted against what they declared (a lying header stops
the copy), into a fresh temporary folder that is always removed, where the bag itself is
checked: BagIt version, manifests with sha256 or sha512, completeness (missing or extra
files), Payload-Oxum and every checksum. Nothing touches the database or the storage.

    with bag_opened(path) as opened:      # raises BagRefused(problems) when anything is wrong
        opened.root / "data" / ...
"""

from __future__ import annotations

import re
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import bagit
from django.conf import settings

SUPPORTED_VERSIONS = ("0.97", "1.0")
STRONG_ALGORITHMS = ("sha256", "sha512")
CHUNK = 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


GIB = 1024**3


@dataclass(frozen=True)
class BagLimits:
    """Upper bounds for an archive offered for validation or import (see docs/deploy.md, Bags).

    Sized for real bags: a training run's bag (dataset crops, LoRA files, validation images)
    is hundreds of MB; PNG, safetensors and JPEG hardly compress, JSON and CSV some 5-20:1.
    """

    max_total_bytes: int = 8 * GIB  # what all members together declare, unpacked
    max_file_bytes: int = 4 * GIB  # one member, unpacked
    max_members: int = 100_000
    max_ratio: float = 200.0  # unpacked : packed, per member and for the whole archive
    ratio_floor_bytes: int = 1024 * 1024  # smaller members may compress better (empty files)
    max_upload_bytes: int = 8 * GIB  # one upload request to the bag endpoints

    @classmethod
    def from_settings(cls) -> BagLimits:
        def value(name: str, default, kind=int):
            return kind(getattr(settings, name, default))

        return cls(
            max_total_bytes=value("ATELIER_BAG_MAX_BYTES", cls.max_total_bytes),
            max_file_bytes=value("ATELIER_BAG_MAX_FILE_BYTES", cls.max_file_bytes),
            max_members=value("ATELIER_BAG_MAX_MEMBERS", cls.max_members),
            max_ratio=value("ATELIER_BAG_MAX_RATIO", cls.max_ratio, float),
            ratio_floor_bytes=cls.ratio_floor_bytes,
            max_upload_bytes=value("ATELIER_BAG_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
        )


def bag_temp_dir() -> str | None:
    """Where uploads and extracted bags go while they are checked (None: the system's)."""
    return getattr(settings, "ATELIER_BAG_TEMP_DIR", None) or None


class BagRefused(Exception):
    """The archive or bag is not acceptable; ``problems`` is a readable list of reasons."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass
class Member:
    name: str  # normalised, relative, "/"-separated
    is_dir: bool
    size: int
    source: object  # TarInfo or ZipInfo


@dataclass
class OpenedBag:
    root: Path
    bag: bagit.Bag
    info: dict[str, str] = field(default_factory=dict)
    version: str = ""
    payload_files: int = 0
    payload_bytes: int = 0

    @property
    def name(self) -> str:
        return self.root.name


@dataclass
class BagReport:
    valid: bool
    problems: list[str]
    bag_name: str = ""
    version: str = ""
    info: dict[str, str] = field(default_factory=dict)
    payload_files: int = 0
    payload_bytes: int = 0

    def as_dict(self) -> dict:
        return {
            "valid": self.valid,
            "problems": self.problems,
            "bag_name": self.bag_name,
            "bagit_version": self.version,
            "bag_info": self.info,
            "payload_files": self.payload_files,
            "payload_bytes": self.payload_bytes,
        }


# --- step 1: look at the archive without extracting ------------------------------------------


def _archive_kind(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise BagRefused(["The file is neither a tar nor a zip archive."])


def _check_name(raw: str) -> tuple[str | None, str | None]:
    """(normalised name, problem): refuse anything that could land outside the bag folder."""
    shown = raw.encode("unicode_escape").decode("ascii")
    if not raw:
        return None, "An archive member has an empty name."
    if _CONTROL.search(raw):
        return None, f"{shown}: control characters in a name are not allowed."
    if "\\" in raw:
        return None, f"{shown}: backslashes in a name are not allowed."
    if raw.startswith("/") or _DRIVE.match(raw):
        return None, f"{shown}: absolute paths are not allowed."
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        return None, f"{shown}: path traversal ('..') is not allowed."
    if not parts:
        return None, f"{shown}: the name points at the archive root."
    return "/".join(parts), None


def _over_ratio(unpacked: int, packed: int, limits: BagLimits) -> bool:
    return unpacked > limits.ratio_floor_bytes and unpacked > limits.max_ratio * max(packed, 1)


def _ratio_problem(what: str, unpacked: int, packed: int, limits: BagLimits) -> str:
    return (
        f"{what} declares {unpacked} bytes unpacked from {packed} packed, a compression ratio "
        f"over the limit of {limits.max_ratio:g}:1 (a zip bomb?); nothing was extracted."
    )


def _size_problems(name: str, size: int, total: int, limits: BagLimits) -> list[str]:
    problems = []
    if size > limits.max_file_bytes:
        problems.append(
            f"{name}: declares {size} bytes, over the limit of {limits.max_file_bytes} per file; "
            "nothing was extracted."
        )
    if total > limits.max_total_bytes:
        problems.append(
            f"The archive declares more than {limits.max_total_bytes} bytes unpacked in total; "
            "nothing was extracted."
        )
    return problems


def _tar_members(path: Path, limits: BagLimits, problems: list[str]) -> list[Member]:
    members: list[Member] = []
    total = 0
    packed = path.stat().st_size
    # Reading the headers of a compressed tar decompresses it (into memory, not to disk): the
    # running total against the ratio stops a tar bomb after at most max_ratio x its size.
    with tarfile.open(path, "r:*") as archive:
        for info in archive:
            if len(members) >= limits.max_members:
                problems.append(f"The archive has more than {limits.max_members} members.")
                break
            name, problem = _check_name(info.name)
            if problem:
                problems.append(problem)
                continue
            if info.issym():
                problems.append(f"{name}: symbolic links are not allowed (-> {info.linkname}).")
                continue
            if info.islnk():
                problems.append(f"{name}: hard links are not allowed (-> {info.linkname}).")
                continue
            if info.issparse():
                problems.append(f"{name}: sparse files are not allowed.")
                continue
            if not (info.isreg() or info.isdir()):
                problems.append(f"{name}: devices, pipes and other special files are not allowed.")
                continue
            size = info.size if info.isreg() else 0
            total += size
            found = _size_problems(name, size, total, limits)
            if not found and _over_ratio(total, packed, limits):
                found = [_ratio_problem("The archive", total, packed, limits)]
            if found:
                problems.extend(found)
                break
            members.append(Member(name=name, is_dir=info.isdir(), size=size, source=info))
    return members


def _zip_members(path: Path, limits: BagLimits, problems: list[str]) -> list[Member]:
    members: list[Member] = []
    total = 0
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()  # the central directory: nothing is decompressed yet
        if len(infos) > limits.max_members:
            problems.append(f"The archive has more than {limits.max_members} members.")
            return []
        for info in infos:
            name, problem = _check_name(info.filename)
            if problem:
                problems.append(problem)
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                problems.append(f"{name}: symbolic links are not allowed.")
                continue
            # Only the file-type bits count: many zips (Python's writestr too) set bare 0o600.
            if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                problems.append(f"{name}: devices, pipes and other special files are not allowed.")
                continue
            if info.flag_bits & 0x1:
                problems.append(f"{name}: encrypted members are not allowed.")
                continue
            is_dir = info.is_dir()
            size = 0 if is_dir else info.file_size
            total += size
            found = _size_problems(name, size, total, limits)
            if not found and _over_ratio(size, info.compress_size, limits):
                found = [_ratio_problem(name, size, info.compress_size, limits)]
            if found:
                problems.extend(found)
                break
            members.append(Member(name=name, is_dir=is_dir, size=size, source=info))
    packed = path.stat().st_size
    if not problems and _over_ratio(total, packed, limits):
        problems.append(_ratio_problem("The archive", total, packed, limits))
    return members


def archive_members(path: Path, limits: BagLimits) -> tuple[str, list[Member]]:
    """Check every member of the archive; raise BagRefused listing all that is wrong."""
    path = Path(path)
    size = path.stat().st_size
    if size > min(limits.max_total_bytes, limits.max_upload_bytes):
        raise BagRefused(
            [
                f"The archive is {size} bytes, over the limit of "
                f"{min(limits.max_total_bytes, limits.max_upload_bytes)}."
            ]
        )
    kind = _archive_kind(path)
    problems: list[str] = []
    try:
        if kind == "tar":
            members = _tar_members(path, limits, problems)
        else:
            members = _zip_members(path, limits, problems)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise BagRefused([f"The {kind} archive cannot be read: {exc}"]) from exc
    seen: set[str] = set()
    for member in members:
        if member.name in seen and not member.is_dir:
            problems.append(f"{member.name}: appears twice in the archive.")
        seen.add(member.name)
    if problems:
        raise BagRefused(problems)
    if not any(not m.is_dir for m in members):
        raise BagRefused(["The archive is empty."])
    return kind, members


def _bag_prefix(members: list[Member]) -> str:
    """'' when bagit.txt is at the top, else the single top folder that holds the bag."""
    names = {m.name for m in members}
    if "bagit.txt" in names:
        return ""
    tops = {m.name.split("/", 1)[0] for m in members}
    if len(tops) == 1:
        top = tops.pop()
        if f"{top}/bagit.txt" in names:
            return top
    raise BagRefused(
        ["No bag found: the archive must hold bagit.txt at its top or in one top-level folder."]
    )


# --- step 2: extract the checked members -----------------------------------------------------


def _copy_counted(source: BinaryIO, target: BinaryIO, limit: int, name: str) -> int:
    """Copy at most ``limit`` bytes; a member that yields more lies about its size."""
    written = 0
    for chunk in iter(lambda: source.read(CHUNK), b""):
        written += len(chunk)
        if written > limit:
            raise BagRefused(
                [f"{name}: holds more bytes than its header declares ({limit}); refused."]
            )
        target.write(chunk)
    return written


def extract_members(path: Path, kind: str, members: list[Member], dest: Path) -> int:
    """Copy the (already checked) members under ``dest``; return the bytes written.

    Links and specials never get here. Every member is counted against the size it declared,
    and the whole against their sum, so a header that lies stops the copy; an archive that
    turns out corrupt or short while being read (a header promising more than the data) is
    refused like any other bad bag.
    """
    dest = dest.resolve()
    declared = sum(m.size for m in members)
    written = 0
    opener = tarfile.open(path, "r:*") if kind == "tar" else zipfile.ZipFile(path)
    try:
        with opener as archive:
            for member in members:
                target = (dest / member.name).resolve()
                if dest not in target.parents:
                    raise BagRefused([f"{member.name}: resolves outside the bag folder."])
                if member.is_dir:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if kind == "tar":
                    source = archive.extractfile(member.source)
                else:
                    source = archive.open(member.source)
                if source is None:
                    raise BagRefused([f"{member.name}: cannot be read from the archive."])
                # "xb": never overwrite, never follow anything already there.
                with source, open(target, "xb") as out:
                    written += _copy_counted(source, out, member.size, member.name)
                if written > declared:
                    raise BagRefused(["The archive holds more bytes than its members declare."])
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise BagRefused(
            [f"The {kind} archive is corrupt or its headers lie about the data: {exc}"]
        ) from exc
    return written


# --- step 3: check the bag ------------------------------------------------------------------


def _declared_version(root: Path) -> str:
    declaration = root / "bagit.txt"
    if not declaration.is_file():
        raise BagRefused(["bagit.txt is missing."])
    text = declaration.read_text(encoding="utf-8-sig", errors="replace")
    match = re.search(r"^BagIt-Version:\s*(\S+)\s*$", text, re.MULTILINE)
    if not match:
        raise BagRefused(["bagit.txt does not declare a BagIt-Version."])
    return match.group(1)


def _describe(detail) -> str:
    if isinstance(detail, bagit.ChecksumMismatch):
        return (
            f"{detail.path}: {detail.algorithm} checksum mismatch "
            f"(manifest {detail.expected}, file {detail.found})."
        )
    if isinstance(detail, bagit.FileMissing):
        return f"{detail.path}: listed in a manifest but missing from the bag."
    if isinstance(detail, bagit.UnexpectedFile):
        return f"{detail.path}: in the payload but not listed in any manifest (extra file)."
    return str(detail)


def _validation_problems(exc: bagit.BagValidationError) -> list[str]:
    if exc.details:
        return [_describe(detail) for detail in exc.details]
    return [str(getattr(exc, "message", exc))]


def bag_check_folder(root: Path) -> OpenedBag:
    """Check an extracted bag; raise BagRefused with every problem found."""
    version = _declared_version(root)
    if version not in SUPPORTED_VERSIONS:
        raise BagRefused(
            [
                f"BagIt version {version} is not supported "
                f"(supported: {', '.join(SUPPORTED_VERSIONS)})."
            ]
        )
    try:
        bag = bagit.Bag(str(root))
    except bagit.BagError as exc:
        raise BagRefused([f"Not a readable bag: {exc}"]) from exc
    problems: list[str] = []
    if not set(bag.algorithms) & set(STRONG_ALGORITHMS):
        problems.append(
            "The bag has no sha256 or sha512 payload manifest "
            f"(found: {', '.join(bag.algorithms) or 'none'})."
        )
    try:
        bag.validate(processes=1)
    except bagit.BagValidationError as exc:
        problems.extend(_validation_problems(exc))
        if not exc.details:
            # bagit stops at the first failed step (e.g. Payload-Oxum): name the files behind it.
            for step in ("_validate_completeness", "_validate_entries"):
                try:
                    getattr(bag, step)(*([1] if step == "_validate_entries" else []))
                except bagit.BagValidationError as more:
                    problems.extend(p for p in _validation_problems(more) if p not in problems)
                except (bagit.BagError, AttributeError):
                    break
    except bagit.BagError as exc:
        problems.append(str(exc))
    if problems:
        raise BagRefused(problems)
    problems = graph_problems(root / "data")
    if problems:
        raise BagRefused(problems)
    payload = [entry for entry in bag.payload_files()]
    payload_bytes = sum((root / entry).stat().st_size for entry in payload)
    info = {key: ", ".join(v) if isinstance(v, list) else str(v) for key, v in bag.info.items()}
    return OpenedBag(
        root=root,
        bag=bag,
        info=info,
        version=version,
        payload_files=len(payload),
        payload_bytes=payload_bytes,
    )


def graph_problems(payload: Path, limit: int = 20) -> list[str]:
    """Is the bag's record graph closed? Every reference of every record in data/atelier.json
    is in the bag (a record, a payload file or an agent), and each app's registered check
    (``bag_registry.register_check``: a dataset holds every example its content hash covers,
    a study every reference, rating and metric its report lists) finds nothing missing.
    A bag without atelier.json is a plain BagIt bag: nothing to check."""
    import json

    from archives.bag_graph import forward_fks, model_or_none
    from archives.bag_registry import bag_checks

    path = payload / "atelier.json"
    if not path.is_file():
        return []
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        records = {r["key"]: r for r in document["records"]}
    except (ValueError, KeyError, TypeError) as exc:
        return [f"data/atelier.json is not a record graph: {exc}."]
    known = set(records) | set(document.get("files") or {}) | set(document.get("agents") or {})
    problems: list[str] = []
    for key, record in records.items():
        model = model_or_none(record.get("model", ""))
        names = [f.name for f in forward_fks(model)] if model is not None else []
        refs = [(n, record["fields"].get(n)) for n in names]
        refs += [(n, k) for n, keys in (record.get("m2m") or {}).items() for k in keys]
        for name, target in refs:
            if isinstance(target, str) and target not in known:
                problems.append(f"{key}: {name} refers to {target}, which is not in the bag.")
    for check in bag_checks():
        problems.extend(check(document, payload))
    if len(problems) > limit:
        problems = [*problems[:limit], f"... and {len(problems) - limit} more problems."]
    return problems


@contextmanager
def bag_opened(path: Path | str, limits: BagLimits | None = None) -> Iterator[OpenedBag]:
    """Check the archive, extract it to a temporary folder, check the bag; clean up after."""
    limits = limits or BagLimits.from_settings()
    kind, members = archive_members(Path(path), limits)
    prefix = _bag_prefix(members)
    # Removed on success, refusal and any error alike.
    with tempfile.TemporaryDirectory(prefix="atelier-bag-", dir=bag_temp_dir()) as workdir:
        extract_dir = Path(workdir) / "x"
        extract_dir.mkdir()
        extract_members(Path(path), kind, members, extract_dir)
        root = extract_dir / prefix if prefix else extract_dir
        yield bag_check_folder(root)


def bag_validate(path: Path | str, limits: BagLimits | None = None) -> BagReport:
    """Validate an archived bag and return a report (never raises for a bad bag)."""
    try:
        with bag_opened(path, limits) as opened:
            return BagReport(
                valid=True,
                problems=[],
                bag_name=opened.name,
                version=opened.version,
                info=opened.info,
                payload_files=opened.payload_files,
                payload_bytes=opened.payload_bytes,
            )
    except BagRefused as exc:
        return BagReport(valid=False, problems=exc.problems)


def upload_too_large(content_length: str | int | None, limits: BagLimits | None = None) -> str:
    """The refusal for a request body over the bag upload limit ('' when it fits).

    Checked against the request's Content-Length before Django reads (and spools) the body.
    """
    limits = limits or BagLimits.from_settings()
    try:
        length = int(content_length or 0)
    except (TypeError, ValueError):
        return "The request has an unreadable Content-Length."
    if length > limits.max_upload_bytes:
        return (
            f"The upload is {length} bytes, over the limit of {limits.max_upload_bytes} for a "
            "bag (ATELIER_BAG_MAX_UPLOAD_BYTES); nothing was stored."
        )
    return ""


@contextmanager
def upload_saved(upload, limits: BagLimits | None = None) -> Iterator[Path]:
    """The uploaded bag as a file in a temporary folder, removed afterwards whatever happens."""
    limits = limits or BagLimits.from_settings()
    if getattr(upload, "size", 0) and upload.size > limits.max_upload_bytes:
        raise BagRefused(
            [f"The upload is {upload.size} bytes, over the limit of {limits.max_upload_bytes}."]
        )
    with tempfile.TemporaryDirectory(prefix="atelier-upload-", dir=bag_temp_dir()) as folder:
        path = Path(folder) / "upload.bag"
        with open(path, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        yield path


__all__ = [
    "BagLimits",
    "BagRefused",
    "BagReport",
    "OpenedBag",
    "bag_check_folder",
    "bag_opened",
    "bag_temp_dir",
    "bag_validate",
    "upload_saved",
    "upload_too_large",
]
