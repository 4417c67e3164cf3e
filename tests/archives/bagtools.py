"""Helpers of the BagIt tests: a small catalogue, snapshots that ignore primary keys, flushing."""

from __future__ import annotations

import json

from django.core.files.storage import default_storage

from archives.models import StoredFile
from core.roles import groups_ensure
from heritage import services
from heritage.models import (
    Collection,
    GazetteerPassage,
    HeritageItem,
    ItemImage,
    MotifTerm,
    SemioticAnnotation,
    TrainingDataset,
)
from tests.conftest import make_user
from tests.heritage.conftest import image_bytes


def make_archivist(username: str = "archivist1", **extra):
    """A user in the ``archivist`` group as ``atelier_run`` sets it up (archives.manage_bags)."""
    groups_ensure()
    return make_user(username, "archivist", **extra)


def small_catalogue(slug: str = "atlas", annotator=None) -> Collection:
    collection = services.collection_create(
        slug=slug, title={"en": "Atlas silk", "zh": "艾德莱斯绸", "ug": "ئەتلەس"}, published=True
    )
    tassel = services.motif_term_get_or_create(slug="tassel", label={"en": "tassel"})
    comb = services.motif_term_get_or_create(slug="comb", label={"en": "comb"})
    items = []
    for index, category in enumerate(["iconographic", "directional", "cultural_semiotic"]):
        item = services.item_create(
            collection=collection,
            accession_number=f"{slug.upper()}-{index:03d}",
            title={"en": f"Pattern {index}", "zh": f"图案 {index}"},
            rights="http://rightsstatements.org/vocab/InC/1.0/",
            published=True,
        )
        image = services.item_image_create(
            item=item,
            content=image_bytes(size=(40 + index * 8, 32), color=(20 * index, 90, 200)),
            filename=f"p{index}.png",
            caption={"en": f"caption {index}"},
            derivatives="now",
        )
        services.annotation_create(
            image=image,
            category=category,
            motifs=[tassel, comb] if index == 0 else [comb],
            region=(2, 2, 10, 10),
            meaning={"en": f"meaning {index}", "zh": "意义"},
            annotator=annotator,
        )
        items.append(item)
    services.passage_create(
        source_work="Gazetteer of Yarkand",
        section="Geography",
        original_text="山高水长",
        approved_prompt="high mountains and a long river",
        published=True,
        items=items[:2],
    )
    return collection


def _j(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _sha(stored) -> str | None:
    return stored.sha256 if stored is not None else None


def catalogue_snapshot() -> dict:
    """Every heritage record and stored file, described without primary keys."""
    return {
        "collections": sorted(
            (c.slug, _j(c.title), _j(c.description), c.published, c.created_at.isoformat())
            for c in Collection.objects.all()
        ),
        "items": sorted(
            (
                i.accession_number,
                i.collection.slug,
                _j(i.title),
                i.rights,
                i.published,
                i.created_at.isoformat(),
                i.updated_at.isoformat(),
            )
            for i in HeritageItem.objects.all()
        ),
        "images": sorted(
            (
                im.item.accession_number,
                _sha(im.original),
                _sha(im.thumbnail),
                _sha(im.display),
                im.width,
                im.height,
                _j(im.caption),
                im.original_filename,
            )
            for im in ItemImage.objects.all()
        ),
        "annotations": sorted(
            (
                a.image.original.sha256,
                a.category,
                tuple(sorted(a.motifs.values_list("slug", flat=True))),
                a.region,
                _j(a.meaning),
                a.annotated_on.isoformat(),
                a.annotator.username if a.annotator else None,
            )
            for a in SemioticAnnotation.objects.all()
        ),
        "motifs": sorted((m.slug, _j(m.label)) for m in MotifTerm.objects.all()),
        "passages": sorted(
            (
                p.source_work,
                p.original_text,
                p.approved_prompt,
                tuple(sorted(p.items.values_list("accession_number", flat=True))),
            )
            for p in GazetteerPassage.objects.all()
        ),
        "files": sorted(
            (f.sha256, f.size, f.content_type, f.created_at.isoformat())
            for f in StoredFile.objects.all()
        ),
    }


def flush_catalogue() -> None:
    """Delete every heritage record and every stored file (rows and bytes)."""
    GazetteerPassage.objects.all().delete()
    TrainingDataset.objects.all().delete()
    HeritageItem.objects.all().delete()
    Collection.objects.all().delete()
    MotifTerm.objects.all().delete()
    for stored in StoredFile.objects.all():
        default_storage.delete(stored.name)
    StoredFile.objects.all().delete()


def storage_names() -> set[str]:
    found: set[str] = set()

    def walk(folder: str) -> None:
        dirs, files = default_storage.listdir(folder)
        for name in files:
            found.add(f"{folder}/{name}" if folder else name)
        for name in dirs:
            walk(f"{folder}/{name}" if folder else name)

    walk("")
    return found
