"""The catalogue API: anonymous users read published records, curators write (via services)."""

from __future__ import annotations

import hashlib
import re

import django_filters
from django.core.cache import cache
from django.db.models import Q
from django.http import HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from core.api import drf_validation_error
from heritage import bulk, selectors, services
from heritage.api import serializers as s
from heritage.models import (
    GazetteerPassage,
    HeritageItem,
    ItemImage,
    MotifTerm,
    SemioticAnnotation,
    Versioned,
)
from heritage.selectors import user_is_curator
from heritage.signals import catalogue_version


class IsCuratorOrReadOnly(permissions.BasePermission):
    message = "Only curators may change the catalogue."

    def has_permission(self, request, view) -> bool:
        return request.method in permissions.SAFE_METHODS or user_is_curator(request.user)


class CataloguePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class CachedReadMixin:
    """Cache-Control for reads (public for anonymous, private for signed-in users); the ETag and
    304 answers come from ConditionalGetMiddleware, which hashes the rendered body."""

    public_max_age = 60

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method in ("GET", "HEAD") and response.status_code == 200:
            if request.user.is_authenticated:
                patch_cache_control(response, private=True, max_age=0, must_revalidate=True)
            else:
                patch_cache_control(response, public=True, max_age=self.public_max_age)
            patch_vary_headers(response, ["Accept", "Authorization", "Cookie"])
        return response


class PreconditionFailed(Exception):
    """Answered as 412 with ``data`` as is (an APIException would turn the numbers into
    strings)."""

    def __init__(self, data: dict) -> None:
        super().__init__(data["detail"])
        self.data = data


class PreconditionFailedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    current_version = serializers.IntegerField(allow_null=True)
    your_version = serializers.IntegerField(allow_null=True)


# An edited record's ETag is "v<version>-<md5 of the body>": the version is what If-Match
# checks (the body part keeps 304s honest when nested images or annotations change).
ETAG_VERSION = re.compile(r'(?:W/)?"v(\d+)-[0-9a-f]*"')

IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="The ETag of your copy (from a GET or the last write). If the record changed "
    "since, nothing is written and the answer is 412. Without it, only the fields sent are "
    "written (last writer wins per field).",
)


def versioned_write_schema(summary: str, serializer):
    return extend_schema(
        summary=summary,
        parameters=[IF_MATCH],
        responses={
            200: serializer,
            400: OpenApiResponse(description="Invalid fields; nothing written"),
            412: OpenApiResponse(
                PreconditionFailedSerializer,
                description="If-Match names an older version: nothing written; GET the "
                "record again, re-apply the change and send its new ETag.",
            ),
        },
        description="Answers carry the record's current ETag; send it back in If-Match.",
    )


class CatalogueViewSet(CachedReadMixin, viewsets.GenericViewSet):
    """Anonymous GETs are cached by URL under the catalogue version (heritage/signals.py): any
    write bumps the version, so no response outlives the data it shows.

    A single edited record (Versioned) answers with ETag "v<version>-<hash>"; PATCH honours
    If-Match against the version (412 when stale), see ``if_match_version``.
    """

    permission_classes = [IsCuratorOrReadOnly]
    pagination_class = CataloguePagination
    http_method_names = ["get", "post", "patch", "head", "options"]
    response_cache_seconds = 300
    etag_version: int | None = None  # the version of the record this response shows

    def handle_exception(self, exc):
        if isinstance(exc, PreconditionFailed):
            return Response(exc.data, status=status.HTTP_412_PRECONDITION_FAILED)
        return super().handle_exception(exc)

    def get_object(self):
        obj = super().get_object()
        if isinstance(obj, Versioned):
            self.etag_version = obj.version
        return obj

    def if_match_version(self, request, obj: Versioned) -> int | None:
        """The version the client's If-Match names (None: no header, or "*"); 412 when it is
        not the record's current one."""
        header = request.headers.get("If-Match")
        if header is None or header.strip() == "*":
            return None
        versions = {int(v) for v in ETAG_VERSION.findall(header)}
        if obj.version in versions:
            return obj.version
        if not versions:
            raise PreconditionFailed(
                {
                    "detail": "If-Match must be an ETag this API gave for the record, like "
                    f'"v{obj.version}-…"; nothing was written.',
                    "current_version": obj.version,
                    "your_version": None,
                }
            )
        raise self.stale(obj, expected=max(versions), current=obj.version)

    def stale(self, obj, *, expected: int, current: int | None) -> PreconditionFailed:
        return PreconditionFailed(
            {
                "detail": f"This {obj._meta.verbose_name} was changed by someone else since "
                f"your copy (your version {expected}, now {current}); nothing was written. "
                "GET it again, re-apply your change and send its new ETag in If-Match.",
                "current_version": current,
                "your_version": expected,
            }
        )

    def versioned_write(self, request, obj: Versioned, write) -> None:
        """Run ``write(expected_version)`` (a service call) with If-Match checked before and,
        atomically, inside it; the response then carries the new version's ETag."""
        expected = self.if_match_version(request, obj)
        try:
            write(expected)
        except services.VersionConflict as exc:
            raise self.stale(obj, expected=exc.expected, current=exc.current) from None
        except services.ValidationError as exc:
            raise drf_validation_error(exc) from None
        self.etag_version = obj.version

    def _cache_key(self, request) -> str | None:
        if request.method != "GET" or "Authorization" in request.headers:
            return None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return None
        path = hashlib.sha256(
            f"{request.get_full_path()}|{request.headers.get('Accept', '')}".encode()
        ).hexdigest()
        return f"heritage-api:{catalogue_version()}:{path}"

    def dispatch(self, request, *args, **kwargs):
        key = self._cache_key(request)
        if key is not None:
            hit = cache.get(key)
            if hit is not None:
                content, content_type, etag = hit
                response = HttpResponse(content, content_type=content_type)
                response["ETag"] = etag
                patch_cache_control(response, public=True, max_age=self.public_max_age)
                patch_vary_headers(response, ["Accept", "Authorization", "Cookie"])
                return response
        response = super().dispatch(request, *args, **kwargs)
        versioned = self.etag_version is not None and request.method in ("GET", "HEAD", "PATCH")
        if (
            (key is not None or versioned)
            and response.status_code == 200
            and hasattr(response, "render")
        ):
            response.render()
            digest = hashlib.md5(response.content, usedforsecurity=False).hexdigest()
            # Set here, ConditionalGetMiddleware answers If-None-Match with it (304).
            etag = f'"v{self.etag_version}-{digest}"' if versioned else f'"{digest}"'
            response["ETag"] = etag
            if key is not None:
                cache.set(
                    key,
                    (response.content, response["Content-Type"], etag),
                    self.response_cache_seconds,
                )
        return response


# --- filters ---------------------------------------------------------------------------------


class ItemFilter(django_filters.FilterSet):
    collection = django_filters.CharFilter(field_name="collection__slug", help_text="slug")
    category = django_filters.ChoiceFilter(
        choices=SemioticAnnotation.Category.choices,
        method="filter_category",
        help_text="Items with an annotation of this semiotic category.",
    )
    motif = django_filters.CharFilter(method="filter_motif", help_text="Motif term slug.")
    q = django_filters.CharFilter(
        method="filter_text",
        help_text="Text search: accession, titles and descriptions (any language), period, "
        "place, motif labels.",
    )
    published = django_filters.BooleanFilter()

    class Meta:
        model = HeritageItem
        fields = ["collection", "category", "motif", "q", "published"]

    def filter_category(self, queryset, name, value):
        return selectors.items_with_category(queryset, value)

    def filter_motif(self, queryset, name, value):
        return selectors.items_with_motif(queryset, value)

    def filter_text(self, queryset, name, value):
        return selectors.item_search(queryset, value)


class ImageFilter(django_filters.FilterSet):
    item = django_filters.CharFilter(field_name="item__accession_number")
    collection = django_filters.CharFilter(field_name="item__collection__slug")
    category = django_filters.ChoiceFilter(
        choices=SemioticAnnotation.Category.choices, method="filter_category"
    )

    class Meta:
        model = ItemImage
        fields = ["item", "collection", "category"]

    def filter_category(self, queryset, name, value):
        return queryset.filter(
            pk__in=SemioticAnnotation.objects.filter(category=value).values("image_id")
        )


# Filters never use ModelChoiceFilter: its "Select a valid choice" 400 would tell an unpublished
# record from an unknown one. They narrow the visible queryset, so both give the same empty page.


class AnnotationFilter(django_filters.FilterSet):
    image = django_filters.NumberFilter(field_name="image_id", help_text="Image id.")
    item = django_filters.CharFilter(field_name="image__item__accession_number")
    collection = django_filters.CharFilter(field_name="image__item__collection__slug")
    category = django_filters.ChoiceFilter(choices=SemioticAnnotation.Category.choices)
    motif = django_filters.CharFilter(method="filter_motif")

    class Meta:
        model = SemioticAnnotation
        fields = ["image", "item", "collection", "category", "motif"]

    def filter_motif(self, queryset, name, value):
        return queryset.filter(
            pk__in=SemioticAnnotation.objects.filter(motifs__slug=value).values("pk")
        )


class PassageFilter(django_filters.FilterSet):
    item = django_filters.CharFilter(method="filter_item", help_text="Accession number.")
    source_work = django_filters.CharFilter(lookup_expr="icontains")
    section = django_filters.CharFilter(lookup_expr="icontains")
    q = django_filters.CharFilter(method="filter_text")

    class Meta:
        model = GazetteerPassage
        fields = ["item", "source_work", "section", "q"]

    def filter_item(self, queryset, name, value):
        return selectors.passages_with_item(queryset, value, user=self.request.user)

    def filter_text(self, queryset, name, value):
        return queryset.filter(
            Q(original_text__icontains=value)
            | Q(modern_paraphrase__icontains=value)
            | Q(english_translation__icontains=value)
            | Q(approved_prompt__icontains=value)
        )


# --- viewsets --------------------------------------------------------------------------------


class CollectionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CatalogueViewSet):
    """Collections. Anonymous users see published collections only."""

    serializer_class = s.CollectionSerializer
    lookup_field = "slug"
    ordering_fields = ["position", "slug"]

    def get_queryset(self):
        return selectors.collection_list(user=self.request.user)

    @extend_schema(summary="Create a collection (curators)")
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("position", None)
        try:
            collection = services.collection_create(**data)
        except services.ValidationError as exc:
            raise drf_validation_error(exc) from None
        return Response(self.get_serializer(collection).data, status=status.HTTP_201_CREATED)

    @versioned_write_schema("Change a collection (curators)", s.CollectionSerializer)
    def partial_update(self, request, slug=None):
        collection = self.get_object()
        self.if_match_version(request, collection)
        serializer = self.get_serializer(collection, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        self.versioned_write(
            request,
            collection,
            lambda expected: services.collection_update(
                collection=collection, expected_version=expected, **serializer.validated_data
            ),
        )
        return Response(self.get_serializer(collection).data)


class ItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CatalogueViewSet):
    """Heritage items with their images and semiotic annotations.

    Filters: ``collection`` (slug), ``category``, ``motif`` (slug), ``q`` (text search).
    """

    serializer_class = s.ItemSerializer
    filterset_class = ItemFilter
    ordering_fields = ["accession_number", "updated_at"]
    ordering = ["accession_number"]

    def get_queryset(self):
        return selectors.item_list(
            user=self.request.user, with_annotations=self.action not in ("list",)
        )

    def get_serializer_class(self):
        if self.action == "list":
            return s.ItemListSerializer
        return super().get_serializer_class()

    @extend_schema(summary="Create an item (curators)")
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        try:
            item = services.item_create(
                collection=data.pop("collection"),
                accession_number=data.pop("accession_number"),
                title=data.pop("title"),
                **data,
            )
        except services.ValidationError as exc:
            raise drf_validation_error(exc) from None
        item = self.get_queryset().get(pk=item.pk)
        return Response(self.get_serializer(item).data, status=status.HTTP_201_CREATED)

    @versioned_write_schema("Change an item (curators)", s.ItemSerializer)
    def partial_update(self, request, pk=None):
        item = self.get_object()
        self.if_match_version(request, item)
        serializer = self.get_serializer(item, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        self.versioned_write(
            request,
            item,
            lambda expected: services.item_update(
                item=item, expected_version=expected, **serializer.validated_data
            ),
        )
        item = self.get_queryset().get(pk=item.pk)
        return Response(self.get_serializer(item).data)

    @extend_schema(
        summary="Bulk import a sheet with images (curators)",
        request={"multipart/form-data": s.ImportSerializer},
        responses={200: s.ImportReportSerializer},
        description="Idempotent: re-running the same sheet changes nothing. Each rejected row "
        "is reported with its number and reason; accepted rows go in.",
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, FormParser],
        serializer_class=s.ImportSerializer,
    )
    def bulk_import(self, request):
        serializer = s.ImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        sheet = serializer.validated_data["sheet"]
        name = sheet.name.lower()
        file_format = "json" if name.endswith(".json") else "csv" if name.endswith(".csv") else ""
        if not file_format:
            raise ValidationError({"sheet": "Name the sheet *.csv or *.json."})
        try:
            rows = bulk.parse_sheet(sheet.read(), file_format=file_format)
        except (services.ValidationError, UnicodeDecodeError) as exc:
            raise ValidationError({"sheet": getattr(exc, "messages", [str(exc)])}) from None
        uploaded = {f.name: f for f in request.FILES.getlist("images")}

        def lookup(image_name: str) -> bytes | None:
            upload = uploaded.get(image_name)
            if upload is None:
                return None
            upload.seek(0)
            return upload.read()

        report = bulk.catalogue_import(rows=rows, images=lookup, user=request.user)
        return Response(report.as_dict())

    @extend_schema(
        summary="Export items as CSV or JSON (the import format)",
        parameters=[
            OpenApiParameter("file_format", enum=["csv", "json"], default="csv"),
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/json"): OpenApiTypes.OBJECT,
        },
    )
    @action(detail=False, methods=["get"], url_path="export", pagination_class=None)
    def export(self, request):
        file_format = request.query_params.get("file_format", "csv")
        if file_format not in ("csv", "json"):
            raise ValidationError({"file_format": "Use csv or json."})
        items = self.filter_queryset(self.get_queryset())
        rows = bulk.catalogue_export_rows(items)
        if file_format == "csv":
            response = HttpResponse(bulk.rows_to_csv(rows), content_type="text/csv; charset=utf-8")
        else:
            response = HttpResponse(bulk.rows_to_json(rows), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="catalogue.{file_format}"'
        return response


class ImageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CatalogueViewSet):
    """Images: original checksum, sizes, IIIF addresses. Curators upload (multipart)."""

    serializer_class = s.ImageSerializer
    filterset_class = ImageFilter
    ordering_fields = ["id"]
    ordering = ["id"]
    http_method_names = ["get", "post", "head", "options"]
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        return selectors.image_list(user=self.request.user)

    @extend_schema(
        summary="Upload an image of an item (curators)",
        request={"multipart/form-data": s.ImageUploadSerializer},
        responses={201: s.ImageSerializer},
        description="Only real images within the size and pixel limits; the original is kept "
        "byte for byte; derivatives are made by a background job.",
    )
    def create(self, request):
        serializer = s.ImageUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data["file"]
        try:
            image = services.item_image_create(
                item=data["item"],
                content=upload,
                filename=upload.name,
                is_primary=data["is_primary"],
                caption=data.get("caption"),
                user=request.user,
            )
        except services.ValidationError as exc:
            raise drf_validation_error(exc) from None
        image = self.get_queryset().get(pk=image.pk)
        return Response(self.get_serializer(image).data, status=status.HTTP_201_CREATED)


class AnnotationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CatalogueViewSet):
    """Semiotic annotations (iconographic, directional, cultural-semiotic) with motif terms."""

    serializer_class = s.AnnotationSerializer
    filterset_class = AnnotationFilter
    ordering_fields = ["id", "annotated_on"]
    ordering = ["id"]

    def get_queryset(self):
        return selectors.annotation_list(user=self.request.user)

    @extend_schema(request=s.AnnotationWriteSerializer, responses={201: s.AnnotationSerializer})
    def create(self, request):
        serializer = s.AnnotationWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        region = data.get("region")
        try:
            annotation = services.annotation_create(
                image=data["image"],
                category=data["category"],
                motifs=data.get("motifs", []),
                region=(region["x"], region["y"], region["w"], region["h"]) if region else None,
                meaning=data.get("meaning"),
                annotator=request.user,
            )
        except services.ValidationError as exc:
            raise drf_validation_error(exc) from None
        annotation = self.get_queryset().get(pk=annotation.pk)
        return Response(self.get_serializer(annotation).data, status=status.HTTP_201_CREATED)


class MotifTermViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CatalogueViewSet):
    """The managed vocabulary of motif terms."""

    serializer_class = s.MotifTermSerializer
    queryset = MotifTerm.objects.all()
    lookup_field = "slug"
    pagination_class = None

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        term = services.motif_term_get_or_create(**serializer.validated_data)
        return Response(self.get_serializer(term).data, status=status.HTTP_201_CREATED)


class PassageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CatalogueViewSet):
    """Gazetteer passages: classical text, paraphrase, translation, prompts."""

    serializer_class = s.PassageSerializer
    filterset_class = PassageFilter
    ordering_fields = ["id", "source_work", "section"]
    ordering = ["id"]

    def get_queryset(self):
        return selectors.passage_list(user=self.request.user)

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        try:
            passage = services.passage_create(items=data.pop("items", []), **data)
        except services.ValidationError as exc:
            raise drf_validation_error(exc) from None
        passage = self.get_queryset().get(pk=passage.pk)
        return Response(self.get_serializer(passage).data, status=status.HTTP_201_CREATED)

    @versioned_write_schema("Change a passage (curators)", s.PassageSerializer)
    def partial_update(self, request, pk=None):
        passage = self.get_object()
        self.if_match_version(request, passage)
        serializer = self.get_serializer(passage, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        items = data.pop("items", None)
        self.versioned_write(
            request,
            passage,
            lambda expected: services.passage_update(
                passage=passage, items=items, expected_version=expected, **data
            ),
        )
        passage = self.get_queryset().get(pk=passage.pk)
        return Response(self.get_serializer(passage).data)


class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CatalogueViewSet):
    """Training datasets: versioned snapshots of images and captions; frozen ones never change.

    Anonymous users see frozen datasets only.
    """

    serializer_class = s.DatasetSerializer
    filterset_fields = ["name", "frozen"]
    ordering_fields = ["name", "version", "created_at"]
    ordering = ["name", "-version"]

    def get_queryset(self):
        return selectors.dataset_list(user=self.request.user)

    @extend_schema(request=s.DatasetCreateSerializer, responses={201: s.DatasetSerializer})
    def create(self, request):
        serializer = s.DatasetCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            dataset = services.training_dataset_create(
                **serializer.validated_data, user=request.user
            )
        except services.ValidationError as exc:
            raise drf_validation_error(exc) from None
        dataset = self.get_queryset().get(pk=dataset.pk)
        return Response(self.get_serializer(dataset).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=s.ExampleSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], serializer_class=s.ExampleSerializer)
    def examples(self, request, pk=None):
        dataset = self.get_object()
        examples = selectors.dataset_visible_examples(
            dataset, user=request.user, split=request.query_params.get("split")
        )
        page = self.paginate_queryset(examples)
        return self.get_paginated_response(s.ExampleSerializer(page, many=True).data)

    @extend_schema(
        request=s.ExampleSerializer, responses=s.ExampleSerializer, summary="Edit a caption"
    )
    @action(
        detail=True,
        methods=["patch"],
        url_path=r"examples/(?P<example_id>\d+)",
        serializer_class=s.ExampleSerializer,
    )
    def edit_example(self, request, pk=None, example_id=None):
        dataset = self.get_object()
        example = dataset.examples.filter(pk=example_id).first()
        if example is None:
            return Response({"detail": "No such example in this dataset."}, status=404)
        serializer = s.ExampleSerializer(example, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            example = services.training_example_update(
                example=example,
                caption=serializer.validated_data.get("caption"),
                split=serializer.validated_data.get("split"),
            )
        except services.ValidationError as exc:
            raise drf_validation_error(exc) from None
        return Response(s.ExampleSerializer(example).data)

    @extend_schema(
        request=s.RecaptionSerializer,
        responses={200: s.DatasetSerializer},
        summary="Apply a caption template",
    )
    @action(detail=True, methods=["post"])
    def recaption(self, request, pk=None):
        """A draft's whole-image captions again from a template (edited ones replaced too)."""
        serializer = s.RecaptionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            dataset = services.training_dataset_recaption(
                dataset=self.get_object(),
                caption_template=serializer.validated_data["caption_template"],
            )
        except services.ValidationError as exc:
            raise drf_validation_error(exc) from None
        return Response(self.get_serializer(self.get_queryset().get(pk=dataset.pk)).data)

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT}, summary="Freeze (job)")
    @action(detail=True, methods=["post"])
    def freeze(self, request, pk=None):
        """Queue the crops at the dataset resolution and freeze it; returns the job."""
        dataset = self.get_object()
        try:
            job = services.training_dataset_request_freeze(dataset=dataset, user=request.user)
        except services.ValidationError as exc:
            raise drf_validation_error(exc) from None
        return Response(
            {"job": str(job.id), "job_url": f"/api/v1/jobs/{job.id}/"},
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(request=None, responses={201: s.DatasetSerializer})
    @action(detail=True, methods=["post"], url_path="new-version")
    def new_version(self, request, pk=None):
        """A draft copy (version + 1) to edit; the frozen original stays as it is."""
        draft = services.training_dataset_new_version(dataset=self.get_object(), user=request.user)
        draft = self.get_queryset().get(pk=draft.pk)
        return Response(self.get_serializer(draft).data, status=status.HTTP_201_CREATED)
