"""The catalogue in BagIt bags (``archives.bag_registry``): the ``collection`` scope, the
catalogue's records and relations other scopes follow, readable extras and PREMIS events."""

from __future__ import annotations

import json
from typing import Any

from django.utils.text import slugify

from archives.bag_graph import RecordGraph, dumps, encode_value, file_payload_path
from archives.bag_registry import (
    BagScope,
    RecordRules,
    Relation,
    register_check,
    register_provenance,
    register_readable,
    register_records,
    register_scope,
)
from archives.provenance import ProvenanceBuilder, file_id

# Relations the scopes of this app and of the apps above follow.
COLLECTION_ITEMS = Relation("heritage.collection", "heritage.heritageitem", "collection")
ITEM_IMAGES = Relation("heritage.heritageitem", "heritage.itemimage", "item")
IMAGE_ANNOTATIONS = Relation("heritage.itemimage", "heritage.semioticannotation", "image")
ITEM_PASSAGES = Relation("heritage.heritageitem", "heritage.gazetteerpassage", "items")
DATASET_EXAMPLES = Relation("heritage.trainingdataset", "heritage.trainingexample", "dataset")

# The labels a bag may hold from this app (the import allow-lists are built from these).
CATALOGUE = frozenset(
    {
        "heritage.collection",
        "heritage.heritageitem",
        "heritage.itemimage",
        "heritage.semioticannotation",
        "heritage.gazetteerpassage",
        "heritage.motifterm",
    }
)
DATASETS = frozenset({"heritage.trainingdataset", "heritage.trainingexample"})

register_scope(
    BagScope(
        kind="collection",
        root="heritage.collection",
        relations=(COLLECTION_ITEMS, ITEM_IMAGES, IMAGE_ANNOTATIONS, ITEM_PASSAGES),
        importable=CATALOGUE,
        natural_key="slug",
        description="a collection: its items, images, annotations and passages",
    )
)
# The motif vocabulary comes along with the annotations that use it and is matched by slug.
register_records(RecordRules("heritage.motifterm", vocabulary=True, reuse_by=("slug",)))


def _annotations_by_image(graph: RecordGraph) -> dict[Any, list[dict]]:
    annotations: dict[Any, list[dict]] = {}
    for ann in graph.of("heritage.semioticannotation"):
        annotations.setdefault(ann.image_id, []).append(
            {
                "category": ann.category,
                "motifs": sorted(ann.motifs.values_list("slug", flat=True)),
                "region_xywh": [ann.region_x, ann.region_y, ann.region_w, ann.region_h]
                if ann.region_x is not None
                else None,
                "meaning": ann.meaning,
                "annotated_on": encode_value(ann.annotated_on),
            }
        )
    return annotations


@register_readable
def readable_catalogue(graph: RecordGraph) -> dict[str, str]:
    """Dataset captions as ``metadata.jsonl`` (Hugging Face imagefolder), items as JSON."""
    out: dict[str, str] = {}
    annotations = _annotations_by_image(graph)
    for dataset in graph.of("heritage.trainingdataset"):
        examples = [e for e in graph.of("heritage.trainingexample") if e.dataset_id == dataset.pk]
        if not examples:
            continue
        folder = f"datasets/{slugify(dataset.name) or 'dataset'}-v{dataset.version}"
        lines = []
        for example in sorted(examples, key=lambda e: e.pk):
            image_file = example.crop if example.crop_id else example.image.original
            lines.append(
                json.dumps(
                    {
                        "file_name": "../../" + file_payload_path(image_file)[len("data/") :],
                        "text": example.caption,
                        "split": example.split,
                        "accession_number": example.image.item.accession_number,
                        "annotations": annotations.get(example.image_id, []),
                    },
                    ensure_ascii=False,
                )
            )
        out[f"{folder}/metadata.jsonl"] = "\n".join(lines) + "\n"
    for item in graph.of("heritage.heritageitem"):
        images = [i for i in graph.of("heritage.itemimage") if i.item_id == item.pk]
        if images and not graph.of("heritage.trainingdataset"):
            rows = [
                {
                    "accession_number": item.accession_number,
                    "file": file_payload_path(i.original)[len("data/") :],
                    "caption": i.caption,
                    "annotations": annotations.get(i.pk, []),
                }
                for i in images
            ]
            out[f"items/{slugify(item.accession_number) or item.pk}.json"] = dumps(
                {"title": item.title, "images": rows}
            )
    return out


@register_provenance
def catalogue_events(b: ProvenanceBuilder) -> None:
    """Annotation of images; freezing of training datasets."""
    for annotation in b.graph.of("heritage.semioticannotation"):
        b.event(
            event_type="annotation",
            identifier=f"annotation:{annotation.pk}",
            when=annotation.annotated_on or annotation.created_at,
            detail=f"{annotation.get_category_display()} reading of an image",
            agents=[(b.person(annotation.annotator), "annotator")],
            sources=[file_id(annotation.image.original)],
        )
    for dataset in b.graph.of("heritage.trainingdataset"):
        if dataset.frozen_at:
            b.event(
                event_type="creation",
                identifier=f"dataset:{dataset.pk}",
                when=dataset.frozen_at,
                detail=f"training dataset {dataset} frozen (content hash {dataset.content_hash})",
                agents=[(b.person(dataset.created_by), "creator")],
            )


@register_check
def datasets_complete(document: dict[str, Any], payload) -> list[str]:
    """Each frozen dataset in the bag holds every example its content hash covers: the hash
    is recomputed from the bag's example records and file checksums (a bag that kept 4 of 8
    examples fails here, whatever else it holds)."""
    from heritage.services import dataset_hash_of

    records = {r["key"]: r for r in document.get("records", [])}
    files = document.get("files") or {}
    examples: dict[str, list[dict[str, Any]]] = {}
    for record in records.values():
        if record.get("model") == "heritage.trainingexample":
            examples.setdefault(record["fields"].get("dataset"), []).append(record["fields"])
    problems = []
    for key, record in records.items():
        fields = record["fields"]
        if record.get("model") != "heritage.trainingdataset" or not fields.get("content_hash"):
            continue
        mine = examples.get(key, [])

        def sha(file_key: str | None) -> str:
            return (files.get(file_key) or {}).get("sha256", "") if file_key else ""

        def image_pk(ex: dict[str, Any]) -> int:
            tail = str(ex.get("image") or "").rpartition(":")[2]
            return int(tail) if tail.isdigit() else 0

        rows = []
        for ex in sorted(mine, key=lambda e: (image_pk(e), e.get("part") or 0)):
            image = records.get(ex.get("image"), {}).get("fields", {})
            rows.append(
                {
                    "original_sha256": sha(image.get("original")),
                    "crop_sha256": sha(ex.get("crop")),
                    "caption": ex.get("caption", ""),
                    "split": ex.get("split", ""),
                    "kind": ex.get("kind") or "whole",
                    "box": ex.get("box"),
                    "mask_regions": ex.get("mask_regions"),
                }
            )
        try:
            recomputed = dataset_hash_of(
                trigger_token=fields.get("trigger_token", ""),
                resolution=fields.get("resolution"),
                bucketing=fields.get("bucketing", True),
                masked_loss=fields.get("masked_loss", False),
                unmasked_weight=fields.get("unmasked_weight", 0.1),
                examples=rows,
            )
        except (TypeError, KeyError) as exc:
            problems.append(f"{key}: its examples cannot be read ({exc}).")
            continue
        if recomputed != fields["content_hash"]:
            problems.append(
                f"{key} ({fields.get('name')} v{fields.get('version')}): the bag holds "
                f"{len(mine)} of its examples, which do not give its content hash: examples "
                "are missing or changed."
            )
    return problems
