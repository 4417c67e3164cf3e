# ruff: noqa: RUF001 - Chinese punctuation is intended
"""Load a small demo catalogue (idempotent): Atlas silk patterns, ink landscapes, passages.

Images, titles and semiotic annotations come from the procedural corpus in
``demo/corpus.py`` when it is importable; otherwise simple Pillow drawings
stand in. Re-running changes nothing that is already there.
"""

from __future__ import annotations

import hashlib
import io

from django.core.management.base import BaseCommand
from PIL import Image, ImageDraw

from demo import catalogue_texts as translated
from heritage import services
from heritage.models import (
    Collection,
    GazetteerPassage,
    HeritageItem,
    ItemImage,
    MotifTerm,
    TrainingDataset,
)

UG_LABELS = {
    "atlas": "ئەتلەس",
    "comb": "تاغاق",
    "tassel": "چاچاق",
    "fence": "چىتلاق",
    "almond": "بادام",
    "lozenge": "رومبا",
    "mountain": "تاغ",
    "water": "سۇ",
    "mist": "تۇمان",
    "pavilion": "كۆشك",
    "boat": "كېمە",
}
ATLAS_DATASET = "Atlas demo set"
# The shipped demo model's native size (demo/model: 16x16 latents x VAE factor 4).
DATASET_RESOLUTION = 64
# About one image in seven held out: 4 of 28 (the demo experiment's proportion), 1 of 8.
VALIDATION_FRACTION = 0.15
RIGHTS = "http://rightsstatements.org/vocab/NoC-US/1.0/"
CREDIT = {
    "en": "Atelier demo museum (procedurally generated demo image)",
    "zh": "Atelier 演示博物馆（程序生成的演示图像）",
    "ug": "Atelier كۆرگەزمە مۇزېيى (پروگرامما ياسىغان رەسىم)",
}
COLLECTIONS = {
    "atlas-silk": {
        "title": {"en": "Atlas silk patterns", "zh": "艾德莱斯绸纹样", "ug": "ئەتلەس نەقىشلىرى"},
        "description": {
            "en": "Warp-dyed ikat silk, read as icons, indexes and symbols.",
            "zh": "扎经染色丝绸，以像似、指示与象征三种方式解读。",
            "ug": "ئەتلەس يىپەك — سىمۋول، يۆنىلىش ۋە مەنا بويىچە ئوقۇلىدۇ.",
        },
    },
    "gazetteer-landscapes": {
        "title": {"en": "Gazetteer landscapes", "zh": "方志山水", "ug": "تەزكىرە مەنزىرىلىرى"},
        "description": {
            "en": "Ink landscapes that illustrate a local gazetteer.",
            "zh": "为地方志配图的水墨山水。",
            "ug": "يەرلىك تەزكىرىنى تەسۋىرلەيدىغان سىياھ مەنزىرىلەر.",
        },
    },
}


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _fallback_samples(atlas: int, landscapes: int, size: int):
    """Plain Pillow drawings with annotations, used only when the corpus is missing."""
    from types import SimpleNamespace as NS

    samples = []
    for i in range(atlas):
        image = Image.new("RGB", (size, size), (178, 28, 46))
        draw = ImageDraw.Draw(image)
        for x in range(0, size, size // 8):
            draw.rectangle([x, 0, x + size // 16, size], fill=(238, 186, 38))
        c = size // 2
        draw.polygon(
            [(c, size // 4), (c + size // 6, c), (c, 3 * size // 4), (c - size // 6, c)],
            fill=(32, 42, 112),
        )
        samples.append(
            NS(
                key=f"atlas-{i:04d}",
                style="atlas",
                title={"en": f"Atlas pattern {i + 1}", "zh": f"艾德莱斯纹样 {i + 1}"},
                image=image,
                annotations=[
                    NS(
                        category="iconographic",
                        motifs=("lozenge",),
                        region=(c - size // 6, size // 4, size // 3, size // 2),
                        meaning={"en": "A lozenge on the axis of the cloth."},
                    ),
                    NS(
                        category="directional",
                        motifs=("atlas",),
                        region=None,
                        meaning={"en": "Vertical warp bands lead the eye upward."},
                    ),
                ],
            )
        )
    for i in range(landscapes):
        image = Image.new("RGB", (size, size), (226, 210, 176))
        draw = ImageDraw.Draw(image)
        draw.polygon(
            [(0, size * 3 // 4), (size // 3, size // 4), (2 * size // 3, size * 3 // 4)],
            fill=(60, 58, 54),
        )
        draw.rectangle([0, size * 3 // 4, size, size], fill=(150, 170, 165))
        samples.append(
            NS(
                key=f"landscape-{i:04d}",
                style="landscape",
                title={"en": f"Landscape {i + 1}", "zh": f"山水 {i + 1}"},
                image=image,
                annotations=[
                    NS(
                        category="iconographic",
                        motifs=("mountain", "water"),
                        region=(0, size // 4, 2 * size // 3, size // 2),
                        meaning={"en": "Mountains above water."},
                    ),
                ],
            )
        )
    return samples, [], {}


class Command(BaseCommand):
    help = "Load a small demo catalogue with images, annotations and passages (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--atlas", type=int, default=8, help="Atlas silk patterns")
        parser.add_argument("--landscapes", type=int, default=6, help="ink landscapes")
        parser.add_argument(
            "--scrolls",
            type=int,
            default=2,
            help="long paintings (1:3 hanging scrolls, 4:1 handscrolls) for aspect buckets",
        )
        parser.add_argument("--size", type=int, default=384, help="image size in pixels")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--derivatives",
            choices=["now", "job"],
            default="now",
            help="make thumbnails here (default) or queue them for a worker",
        )
        parser.add_argument(
            "--dataset-resolution",
            type=int,
            default=DATASET_RESOLUTION,
            help="training-crop size of the frozen Atlas training dataset",
        )
        parser.add_argument(
            "--no-dataset", action="store_true", help="do not make the Atlas training dataset"
        )
        parser.add_argument(
            "--worker-wait",
            type=float,
            default=60.0,
            help="seconds to wait for a running worker to freeze the dataset before "
            "running the freeze job in this process",
        )

    def handle(self, *args, **options):
        try:
            from demo import corpus
        except ImportError:
            corpus = None
        if corpus is not None:
            samples = corpus.atlas_samples(
                options["atlas"], size=options["size"], seed=options["seed"]
            )
            samples += corpus.landscape_samples(
                options["landscapes"], size=options["size"], seed=options["seed"]
            )
            samples += corpus.scroll_samples(
                options["scrolls"], size=options["size"] // 2, seed=options["seed"]
            )
            passages, motif_labels = corpus.demo_passages(), dict(corpus.MOTIF_TERMS)
            source = "procedural corpus (demo/corpus.py)"
        else:
            samples, passages, motif_labels = _fallback_samples(
                options["atlas"], options["landscapes"], options["size"]
            )
            source = "Pillow fallback drawings"

        collections = {}
        for slug, texts in COLLECTIONS.items():
            collection = Collection.objects.filter(slug=slug).first() or services.collection_create(
                slug=slug, title=texts["title"], description=texts["description"], published=True
            )
            collections[slug] = collection

        terms: dict[str, MotifTerm] = {}

        def term(slug: str) -> MotifTerm:
            if slug not in terms:
                label = dict(motif_labels.get(slug) or {"en": slug.replace("-", " ")})
                label = translated.merged(label, translated.MOTIFS.get(slug, {}))
                if slug in UG_LABELS:
                    label["ug"] = UG_LABELS[slug]
                terms[slug] = services.motif_term_get_or_create(slug=slug, label=label)
            return terms[slug]

        created = images_added = annotations_added = 0
        items_by_motif: dict[str, list[HeritageItem]] = {}
        for sample in samples:
            accession = f"DEMO-{sample.key.upper()}"
            collection = collections[
                "atlas-silk" if sample.style == "atlas" else "gazetteer-landscapes"
            ]
            item = HeritageItem.objects.filter(accession_number=accession).first()
            if item is None:
                item = services.item_create(
                    collection=collection,
                    accession_number=accession,
                    title=translated.merged(sample.title, translated.title(sample)),
                    description=translated.merged(
                        {"en": getattr(sample, "caption", "") or ""}, translated.description(sample)
                    ),
                    period="demo",
                    place="Atelier demo",
                    provenance="Generated for the Atelier demo; not a historical object.",
                    rights=RIGHTS,
                    credit_line=CREDIT,
                    published=True,
                )
                created += 1
            else:
                # An older load: add the Chinese and Uyghur it lacks (never overwriting).
                title = translated.merged(item.title, translated.title(sample))
                description = translated.merged(item.description, translated.description(sample))
                if (title, description) != (item.title, item.description):
                    services.item_update(item=item, title=title, description=description)
            data = _png(sample.image)
            digest = hashlib.sha256(data).hexdigest()
            image = item.images.filter(original__sha256=digest).first()
            if image is None:
                image = services.item_image_create(
                    item=item,
                    content=data,
                    filename=f"{sample.key}.png",
                    is_primary=True,
                    derivatives=options["derivatives"],
                )
                images_added += 1
            existing = {
                (a.category, tuple(sorted(m.slug for m in a.motifs.all())), a.region)
                for a in image.annotations.prefetch_related("motifs")
            }
            for annotation in sample.annotations:
                key = (annotation.category, tuple(sorted(annotation.motifs)), annotation.region)
                for slug in annotation.motifs:
                    items_by_motif.setdefault(slug, []).append(item)
                if key in existing:
                    for old in image.annotations.all():
                        same = (old.category, old.region) == key[::2]
                        meaning = translated.merged(
                            old.meaning, translated.meaning(old.meaning.get("en", ""))
                        )
                        if same and meaning != old.meaning:
                            services.annotation_update(annotation=old, meaning=meaning)
                    continue
                services.annotation_create(
                    image=image,
                    category=annotation.category,
                    motifs=[term(slug) for slug in annotation.motifs],
                    region=annotation.region,
                    meaning=translated.merged(
                        dict(annotation.meaning),
                        translated.meaning(annotation.meaning.get("en", "")),
                    ),
                )
                existing.add(key)
                annotations_added += 1

        passages_added = 0
        for passage in passages:
            linked = []
            for slug in passage.motifs:
                for item in items_by_motif.get(slug, []):
                    if item not in linked and item.collection.slug == "gazetteer-landscapes":
                        linked.append(item)
            reading = translated.PASSAGES_UG.get(passage.section)
            known = GazetteerPassage.objects.filter(
                source_work=passage.source_work, section=passage.section
            ).first()
            if known is not None:
                translations = translated.merged(known.translations, {"ug": reading or ""})
                if translations != known.translations:
                    services.passage_update(passage=known, translations=translations)
                continue
            services.passage_create(
                source_work=passage.source_work,
                section=passage.section,
                original_text=passage.original_text,
                modern_paraphrase=passage.modern_paraphrase,
                english_translation=passage.english_translation,
                translations={"ug": reading} if reading else {},
                prompt_draft=passage.prompt_draft,
                approved_prompt=passage.prompt_draft,
                published=True,
                items=linked[:3],
            )
            passages_added += 1
        self.stdout.write(
            f"Demo catalogue from the {source}: {created} items, {images_added} images, "
            f"{annotations_added} annotations, {passages_added} passages added."
        )
        if not options["no_dataset"]:
            dataset = atlas_dataset_ensure(
                resolution=options["dataset_resolution"], worker_wait=options["worker_wait"]
            )
            counts = {
                split: dataset.examples.filter(split=split).count()
                for split in ("train", "validation")
            }
            self.stdout.write(
                f"Training dataset {dataset.name!r} v{dataset.version} "
                f"({'frozen' if dataset.frozen else 'NOT frozen'}, {dataset.resolution} px): "
                f"{counts['train']} train, {counts['validation']} validation (held out)."
            )


def atlas_dataset_ensure(
    *, resolution: int = DATASET_RESOLUTION, worker_wait: float = 60.0
) -> TrainingDataset:
    """The frozen Atlas training dataset over every Atlas demo image (idempotent).

    Reuses the newest version when it covers exactly the current Atlas images at this
    resolution; otherwise makes a new version. Captions are the corpus captions (what the
    image shows, palette included: what the demo base model's text encoder was trained on),
    after the trigger token. The freeze is the ``heritage.dataset_freeze`` job: a running worker
    does it; with none, this process runs the same job (``run_job`` claims it atomically, so
    a worker that starts later skips it).
    """
    images = set(
        ItemImage.objects.filter(item__collection__slug="atlas-silk").values_list("pk", flat=True)
    )
    if not images:
        raise ValueError("no Atlas demo images to make a training dataset from")
    latest = TrainingDataset.objects.filter(name=ATLAS_DATASET).order_by("-version").first()
    if (
        latest is not None
        and latest.resolution == resolution
        and set(latest.examples.values_list("image_id", flat=True)) == images
    ):
        dataset = latest
    else:
        dataset = services.training_dataset_create(
            name=ATLAS_DATASET,
            resolution=resolution,
            collections=["atlas-silk"],
            validation_fraction=VALIDATION_FRACTION,
            seed=0,
            description="Atlas silk demo patterns; the validation split is held out for the "
            "demo experiment (manage.py demo_workflow).",
        )
        for example in dataset.examples.select_related("image__item"):
            text = (example.image.item.description or {}).get("en", "").strip()
            if text:
                caption = f"{dataset.trigger_token}, {text}" if dataset.trigger_token else text
                services.training_example_update(example=example, caption=caption)
    if not dataset.frozen:
        dataset = _freeze(dataset, worker_wait=worker_wait)
    return dataset


def _freeze(dataset: TrainingDataset, *, worker_wait: float) -> TrainingDataset:
    import logging
    import time

    from django.db import transaction

    from jobs.models import Job
    from jobs.queue import run_job

    try:
        with transaction.atomic():
            job = services.training_dataset_request_freeze(dataset=dataset)
        pushed = True
    except Exception:  # Redis away: the job row exists; run it here.
        logging.getLogger(__name__).warning("could not queue the freeze job", exc_info=True)
        job = Job.objects.filter(kind="heritage.dataset_freeze", params__dataset_id=dataset.pk)
        job = job.order_by("-created_at").first()
        pushed = False
    if pushed and _workers_listening(job.queue):
        deadline = time.monotonic() + worker_wait
        while time.monotonic() < deadline and job.status == Job.Status.QUEUED:
            time.sleep(0.2)
            job.refresh_from_db()
    if job.status == Job.Status.QUEUED:
        run_job(str(job.id))
    # A worker has it: wait for the end (the crops of a small set take seconds).
    deadline = time.monotonic() + 600
    while not job.is_finished and time.monotonic() < deadline:
        time.sleep(0.2)
        job.refresh_from_db()
    job.refresh_from_db()
    if job.status != Job.Status.SUCCEEDED:
        raise RuntimeError(f"freezing {dataset} failed: {job.error or job.message}")
    dataset.refresh_from_db()
    return dataset


def _workers_listening(queue: str) -> bool:
    try:
        import django_rq
        from rq import Worker

        return bool(Worker.all(queue=django_rq.get_queue(queue)))
    except Exception:
        return False
