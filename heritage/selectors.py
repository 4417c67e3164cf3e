"""Reads of the heritage catalogue (querysets shaped for the pages and the API)."""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet

from core.errors import Refused
from heritage.models import (
    Collection,
    GazetteerPassage,
    HeritageItem,
    ItemImage,
    SemioticAnnotation,
    TrainingDataset,
    TrainingExample,
)


def user_is_curator(user) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    # Cached per request object: permission checks run several times per request.
    cached = getattr(user, "_atelier_is_curator", None)
    if cached is None:
        cached = user.groups.filter(name="curator").exists()
        user._atelier_is_curator = cached
    return cached


def dataset_examples(
    dataset: TrainingDataset, split: str | None = None
) -> QuerySet[TrainingExample]:
    """The examples of a dataset (with image, original and crop files), in a stable order."""
    examples = TrainingExample.objects.filter(dataset=dataset).select_related(
        "image__original", "image__item", "crop", "dataset"
    )
    if split is not None:
        if split not in TrainingExample.Split.values:
            raise Refused(f"split must be one of {TrainingExample.Split.values}, not {split!r}")
        examples = examples.filter(split=split)
    return examples.order_by("image_id", "pk")


def visible_items_q(prefix: str = "") -> Q:
    """What anonymous users and non-curators may see of items: published, in a published
    collection. ``prefix`` reaches an item through a relation (``"image__item__"``)."""
    return Q(**{f"{prefix}published": True, f"{prefix}collection__published": True})


def visible_item_list(*, user=None) -> QuerySet[HeritageItem]:
    """The items ``user`` may see, without prefetches (for subqueries and related lists)."""
    items = HeritageItem.objects.all()
    if not user_is_curator(user):
        items = items.filter(visible_items_q())
    return items


def collection_list(*, user=None) -> QuerySet[Collection]:
    collections = Collection.objects.all()
    if not user_is_curator(user):
        collections = collections.filter(published=True)
    return collections


def annotations_prefetch() -> Prefetch:
    return Prefetch(
        "annotations",
        queryset=SemioticAnnotation.objects.prefetch_related("motifs").order_by("pk"),
    )


def image_prefetch(with_annotations: bool = True) -> Prefetch:
    images = ItemImage.objects.order_by("-is_primary", "position", "pk")
    if with_annotations:
        images = images.prefetch_related(annotations_prefetch())
    return Prefetch("images", queryset=images)


def item_list(*, user=None, with_annotations: bool = True) -> QuerySet[HeritageItem]:
    items = HeritageItem.objects.select_related("collection").prefetch_related(
        image_prefetch(with_annotations)
    )
    if not user_is_curator(user):
        items = items.filter(visible_items_q())
    return items


def item_search(items: QuerySet[HeritageItem], text: str) -> QuerySet[HeritageItem]:
    """Accession, titles/descriptions in any language, period, place, motif labels."""
    text = text.strip()
    if not text:
        return items
    query = (
        Q(accession_number__icontains=text) | Q(period__icontains=text) | Q(place__icontains=text)
    )
    for lang in ("en", "zh", "ug"):
        query |= Q(**{f"title__{lang}__icontains": text})
        query |= Q(**{f"description__{lang}__icontains": text})
    motif_q = Q(motifs__slug__icontains=text)
    for lang in ("en", "zh", "ug"):
        motif_q |= Q(**{f"motifs__label__{lang}__icontains": text})
    annotated = SemioticAnnotation.objects.filter(motif_q).values("image__item_id")
    return items.filter(query | Q(pk__in=annotated))


def items_with_category(items: QuerySet[HeritageItem], category: str) -> QuerySet[HeritageItem]:
    return items.filter(
        pk__in=SemioticAnnotation.objects.filter(category=category).values("image__item_id")
    )


def items_with_motif(items: QuerySet[HeritageItem], motif_slug: str) -> QuerySet[HeritageItem]:
    return items.filter(
        pk__in=SemioticAnnotation.objects.filter(motifs__slug=motif_slug).values("image__item_id")
    )


def image_list(*, user=None) -> QuerySet[ItemImage]:
    images = ItemImage.objects.select_related(
        "item__collection", "original", "thumbnail", "display"
    ).prefetch_related(annotations_prefetch())
    if not user_is_curator(user):
        images = images.filter(visible_items_q("item__"))
    return images


def annotation_list(*, user=None) -> QuerySet[SemioticAnnotation]:
    annotations = SemioticAnnotation.objects.select_related("image__item").prefetch_related(
        "motifs"
    )
    if not user_is_curator(user):
        annotations = annotations.filter(visible_items_q("image__item__"))
    return annotations


def passage_list(*, user=None) -> QuerySet[GazetteerPassage]:
    """Passages with their related items; others than curators see published passages and,
    on them, only the items they may see (a passage must not name an unpublished item)."""
    passages = GazetteerPassage.objects.prefetch_related(
        Prefetch("items", queryset=visible_item_list(user=user).order_by("accession_number"))
    )
    if not user_is_curator(user):
        passages = passages.filter(published=True)
    return passages


def passages_with_item(
    passages: QuerySet[GazetteerPassage], accession_number: str, *, user=None
) -> QuerySet[GazetteerPassage]:
    """Passages about the item, when ``user`` may see it; an unpublished item's accession
    number gives the same empty answer as an unknown one."""
    item_ids = visible_item_list(user=user).filter(accession_number=accession_number)
    return passages.filter(items__in=item_ids).distinct()


def dataset_list(*, user=None) -> QuerySet[TrainingDataset]:
    """Curators see every dataset; others frozen ones, with counts of the examples they may
    see (the examples list leaves out unpublished items' images)."""
    datasets = TrainingDataset.objects.select_related("freeze_job")  # its state
    visible = Q()
    if not user_is_curator(user):
        datasets = datasets.filter(frozen=True)
        visible = visible_items_q("examples__image__item__")
    return datasets.annotate(
        train_count=Count("examples", filter=Q(examples__split="train") & visible),
        validation_count=Count("examples", filter=Q(examples__split="validation") & visible),
    )


def dataset_visible_examples(
    dataset: TrainingDataset, *, user=None, split: str | None = None
) -> QuerySet[TrainingExample]:
    examples = dataset_examples(dataset, split=split)
    if not user_is_curator(user):
        examples = examples.filter(visible_items_q("image__item__"))
    return examples


def dataset_selection_for(selection: dict, *, user=None) -> dict:
    """A dataset's recorded selection as ``user`` may read it: accession numbers and
    collection slugs of unpublished records are left out."""
    if user_is_curator(user) or not isinstance(selection, dict):
        return selection
    shown = dict(selection)
    # The images left out (unpublished ones among them) are for curators only.
    shown.pop("excluded", None)
    if shown.get("items"):
        shown["items"] = sorted(
            visible_item_list(user=user)
            .filter(accession_number__in=list(shown["items"]))
            .values_list("accession_number", flat=True)
        )
    if shown.get("collections"):
        shown["collections"] = sorted(
            collection_list(user=user)
            .filter(slug__in=list(shown["collections"]))
            .values_list("slug", flat=True)
        )
    return shown


def generated_companions(item: HeritageItem) -> list:
    """Curator-approved AI images made for this item, when the generation app provides them."""
    from django.apps import apps

    try:
        model = apps.get_model("generation", "GeneratedImage")
    except LookupError:
        return []
    field_names = {f.name for f in model._meta.get_fields()}
    if not {"item", "approved", "file"} <= field_names:
        return []
    return list(
        model.objects.filter(item=item, approved=True).select_related("file").order_by("pk")[:12]
    )


def dataset_selection_images(
    *,
    collections: list[str] = (),
    categories: list[str] = (),
    motifs: list[str] = (),
    items: list[str] = (),
) -> QuerySet[ItemImage]:
    """The catalogue images a dataset selection matches (the rule training_dataset_create
    applies: filters combine with AND, each list with OR); the dataset page counts them live."""
    images = ItemImage.objects.all()
    if collections:
        images = images.filter(item__collection__slug__in=collections)
    if items:
        images = images.filter(item__accession_number__in=items)
    if categories:
        images = images.filter(
            pk__in=SemioticAnnotation.objects.filter(category__in=categories).values("image_id")
        )
    if motifs:
        images = images.filter(
            pk__in=SemioticAnnotation.objects.filter(motifs__slug__in=motifs).values("image_id")
        )
    return images
