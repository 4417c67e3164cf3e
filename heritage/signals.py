"""Bump the catalogue version on every write, so cached public API responses go stale at once."""

from __future__ import annotations

import time

from django.db import transaction
from django.db.models import F
from django.db.models.signals import m2m_changed, post_delete, post_save

from heritage import models as m

WATCHED = (
    m.Collection,
    m.HeritageItem,
    m.ItemImage,
    m.MotifTerm,
    m.SemioticAnnotation,
    m.GazetteerPassage,
    m.TrainingDataset,
    m.TrainingExample,
)


# Each process remembers the version for up to VERSION_TTL seconds, so a cache hit needs no
# database round trip; other processes see a write within that second (the public
# Cache-Control max-age is 60 s anyway). The writing process forgets at once.
VERSION_TTL = 1.0
_memo: dict[str, float | int | None] = {"value": None, "at": 0.0}


def _forget() -> None:
    _memo["value"] = None


def catalogue_version_bump(**kwargs) -> None:
    # Inside the writer's transaction: a rollback takes the bump back too.
    if not m.CatalogueState.objects.filter(pk=1).update(version=F("version") + 1):
        m.CatalogueState.objects.get_or_create(pk=1, defaults={"version": 1})
    _forget()
    transaction.on_commit(_forget)


def catalogue_version() -> int:
    now = time.monotonic()
    if _memo["value"] is not None and now - float(_memo["at"] or 0) < VERSION_TTL:
        return int(_memo["value"])
    value = m.CatalogueState.objects.filter(pk=1).values_list("version", flat=True).first() or 0
    _memo["value"], _memo["at"] = value, now
    return value


def connect() -> None:
    for model in WATCHED:
        post_save.connect(catalogue_version_bump, sender=model, dispatch_uid=f"cv-save-{model}")
        post_delete.connect(catalogue_version_bump, sender=model, dispatch_uid=f"cv-del-{model}")
    for through in (m.SemioticAnnotation.motifs.through, m.GazetteerPassage.items.through):
        m2m_changed.connect(
            catalogue_version_bump, sender=through, dispatch_uid=f"cv-m2m-{through}"
        )
