"""Evaluation API: experts' items and ratings (blind), curators' studies, reports, metrics."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer, drf_validation_error
from evaluation import selectors, services
from evaluation.api import serializers as s
from evaluation.models import Panel, Study, StudyItem
from generation.models import GeneratedImage
from heritage.models import ItemImage


class IsCurator(permissions.BasePermission):
    message = "curators only"

    def has_permission(self, request, view) -> bool:
        return selectors.user_is_curator(request.user)


class StudyViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Experts: the studies they are on, with their progress. Curators: every study; POST
    creates one (blind copies and per-expert random orders are made at once)."""

    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        if selectors.user_is_curator(self.request.user):
            return Study.objects.all()
        return selectors.studies_for_expert(self.request.user)

    def get_serializer_class(self):
        if self.action == "create":
            return s.StudyCreateSerializer
        if selectors.user_is_curator(self.request.user):
            return s.CuratorStudySerializer
        return s.StudySerializer

    def create(self, request, *args, **kwargs):
        if not selectors.user_is_curator(request.user):
            raise PermissionDenied("curators only")
        data = s.StudyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        generated = list(GeneratedImage.objects.filter(pk__in=v["generated_image_ids"]))
        missing = set(v["generated_image_ids"]) - {g.pk for g in generated}
        refs = list(ItemImage.objects.filter(pk__in=v["reference_image_ids"]))
        missing_refs = set(v["reference_image_ids"]) - {r.pk for r in refs}
        if missing or missing_refs:
            raise ValidationError(
                {
                    "generated_image_ids": [f"no such image: {i}" for i in sorted(missing)],
                    "reference_image_ids": [f"no such image: {i}" for i in sorted(missing_refs)],
                }
            )
        try:
            study = services.study_create(
                title=v["title"],
                description=v["description"],
                instructions=v["instructions"],
                panel=v["panel"],
                generated_images=generated,
                reference_images=refs,
                assignment_mode=v["assignment_mode"],
                raters_per_item=v["raters_per_item"],
                reference_condition=v["reference_condition"],
                seed=v["seed"],
                user=request.user,
            )
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from None
        out = s.CuratorStudySerializer(study, context={"request": request})
        return Response(out.data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def items(self, request, pk=None):
        """The caller's own items in their own order (404 for a study they are not on)."""
        study = selectors.study_for_expert(request.user, pk)
        own = selectors.expert_ratings(study, request.user)
        rows = [
            s.ExpertItemSerializer.build(a, own.get(a.item_id, {}))
            for a in selectors.expert_assignments(study, request.user)
        ]
        return Response({"study": study.pk, "status": study.status, "items": rows})


class RatingSubmitView(APIView):
    """POST {"scores": {"style_consistency": 4, ...}, "comments": {...}} for one item."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=s.RatingSubmitSerializer,
        responses={
            200: OpenApiTypes.OBJECT,
            409: OpenApiResponse(ErrorSerializer, description="The study is closed."),
        },
    )
    def post(self, request, pk: int, token: str):
        study = selectors.study_for_expert(request.user, pk)
        item = StudyItem.objects.filter(study=study, token=token).first()
        if item is None or not item.assignments.filter(expert=request.user).exists():
            return Response({"detail": "no such item"}, status=status.HTTP_404_NOT_FOUND)
        data = s.RatingSubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            ratings = services.rating_submit(
                expert=request.user,
                item=item,
                scores=data.validated_data["scores"],
                comments=data.validated_data.get("comments"),
            )
        except services.StudyClosed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from None
        return Response(
            {"ratings": {r.dimension: {"score": r.score, "comment": r.comment} for r in ratings}}
        )


class StudyCloseView(APIView):
    permission_classes = [IsCurator]

    @extend_schema(
        request=inline_serializer(
            "StudyCloseRequest", {"reopen": serializers.BooleanField(required=False)}
        ),
        responses=s.CuratorStudySerializer,
        description="Reopening withdraws the kiosk approval of the study's generated images "
        "(experts rate them blind again); the answer lists them in `withdrawn_approvals` and "
        "says so in `detail`.",
    )
    def post(self, request, pk: int):
        study = get_object_or_404(Study, pk=pk)
        withdrawn = None
        if request.data.get("reopen"):
            withdrawn = services.study_reopen(study=study)
        else:
            services.study_close(study=study)
        data = dict(s.CuratorStudySerializer(study, context={"request": request}).data)
        if withdrawn is not None:
            data["withdrawn_approvals"] = [image.pk for image in withdrawn]
            data["detail"] = services.withdrawn_message(withdrawn)
        return Response(data)


class StudyMetricsView(APIView):
    """Queue the automated metrics (default queue); follow it at /api/v1/jobs/<id>/."""

    permission_classes = [IsCurator]

    @extend_schema(
        request=None,
        responses={
            202: inline_serializer(
                "MetricsJob", {"job": serializers.UUIDField(), "url": serializers.CharField()}
            )
        },
    )
    def post(self, request, pk: int):
        study = get_object_or_404(Study, pk=pk)
        job = services.study_request_metrics(study=study, user=request.user)
        return Response(
            {"job": str(job.pk), "url": f"/api/v1/jobs/{job.pk}/"}, status=status.HTTP_202_ACCEPTED
        )


class StudyReportView(APIView):
    """Table 2 (mean ± SD), agreement, Wilcoxon + Holm with bootstrap CIs, metrics, Spearman.
    Query: ``sd_over=ratings|rater_means``, ``pair_by=group|rater_group``."""

    permission_classes = [IsCurator]

    @extend_schema(
        parameters=[
            OpenApiParameter("sd_over", str, enum=["ratings", "rater_means"]),
            OpenApiParameter("pair_by", str, enum=["group", "rater_group"]),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request, pk: int):
        study = get_object_or_404(Study, pk=pk)
        # An unknown sd_over or pair_by is a core.errors.Refused: 400 with its message.
        data = selectors.study_report(
            study,
            sd_over=request.query_params.get("sd_over", "ratings"),
            pair_by=request.query_params.get("pair_by", "group"),
        )
        return Response(data)


class StudyReferencesView(APIView):
    """The study's metric references. GET: each with its dataset split and use. PUT
    {"image_ids": [...]}: replace them (unknown ids: 400, nothing changes); a training image of
    a compared run is kept, reported as split "train", for the reproduction protocol only."""

    permission_classes = [IsCurator]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, pk: int):
        study = get_object_or_404(Study, pk=pk)
        return Response({"study": study.pk, "references": selectors.study_references(study)})

    @extend_schema(request=s.StudyReferencesSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request, pk: int):
        study = get_object_or_404(Study, pk=pk)
        data = s.StudyReferencesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.study_references_set(
                study=study, image_ids=data.validated_data["image_ids"], user=request.user
            )
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from None
        return Response({"study": study.pk, "references": selectors.study_references(study)})


class NearCopyFlagsView(APIView):
    """GET ?ids=1,2,3: the memorisation check of generated images (near copies flagged)."""

    permission_classes = [IsCurator]

    @extend_schema(
        parameters=[OpenApiParameter("ids", str, description="comma-separated ids")],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request):
        raw = request.query_params.get("ids", "")
        try:
            ids = [int(p) for p in raw.split(",") if p.strip()]
        except ValueError:
            raise ValidationError({"ids": "comma-separated generated image ids"}) from None
        return Response({str(k): v for k, v in selectors.near_copy_flags(ids).items()})


class PanelViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsCurator]
    serializer_class = s.PanelSerializer
    queryset = Panel.objects.all()
