"""Writes of the preservation layer: every file the service keeps goes through here."""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import transaction

from archives.models import StoredFile

CHUNK = 1024 * 1024
_written_in_block: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "atelier_written_files", default=None
)


def sha256_of_stream(stream: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


@contextmanager
def atomic_with_files() -> Iterator[None]:
    """A transaction that also deletes the files written inside it when it rolls back.

    Use it around any service that stores files, so a failure leaves no row and no orphan.
    """
    written: list[str] = []
    outer = _written_in_block.get()
    token = _written_in_block.set(written)
    try:
        with transaction.atomic():
            yield
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise
    finally:
        _written_in_block.reset(token)
    # A nested block's files belong to the outer one too: delete them if the outer rolls back.
    if outer is not None:
        outer.extend(written)


def stored_file_save(*, name: str, content: bytes | BinaryIO, content_type: str = "") -> StoredFile:
    """Write ``content`` under ``name`` (or a free variant of it) and record its sha256."""
    if isinstance(content, bytes | bytearray):
        data = bytes(content)
        sha256, size = hashlib.sha256(data).hexdigest(), len(data)
        django_file: File = ContentFile(data)
    else:
        content.seek(0)
        sha256, size = sha256_of_stream(content)
        content.seek(0)
        django_file = File(content)
    saved_name = default_storage.save(name, django_file)
    written = _written_in_block.get()
    if written is not None:
        written.append(saved_name)
    stored = StoredFile(name=saved_name, sha256=sha256, size=size, content_type=content_type)
    try:
        stored.full_clean()
        stored.save()
    except Exception:
        default_storage.delete(saved_name)
        raise
    return stored


def stored_file_open(stored: StoredFile, mode: str = "rb"):
    return default_storage.open(stored.name, mode)


def stored_file_read(stored: StoredFile) -> bytes:
    with default_storage.open(stored.name, "rb") as handle:
        return handle.read()
