"""Generation API: read-only lists plus one small view per action (create, cancel, approve)."""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import drf_validation_error
from generation import selectors, services
from generation.api import serializers as s
from generation.diffusion.config import PRESETS
from generation.diffusion.prompting import PromptDraftError
from generation.hooks import ApprovalQueued
from generation.models import (
    BaseModel,
    GeneratedImage,
    GenerationRequest,
    Sweep,
    TrainingCheckpoint,
    TrainingRun,
)
from jobs.models import Job


class IsCurator(permissions.BasePermission):
    message = "Only curators may do this."

    def has_permission(self, request, view) -> bool:
        return selectors.user_is_curator(request.user)


EXPERT_GROUP = "expert"  # evaluation's group (named here: generation does not import it)


class NotAnExpert(permissions.BasePermission):
    """Experts rate images blind: nothing in generation (conditions, prompts, runs) is theirs,
    not even the approved images visitors see. Curators who also rate are curators here."""

    message = "Experts rate images blind: the generation API is not open to experts."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not getattr(user, "is_authenticated", False) or selectors.user_is_curator(user):
            return True
        return not user.groups.filter(name=EXPERT_GROUP).exists()


def _get(model, pk, field: str):
    """A referenced row, or a 400 naming the field (not a 404 for the whole request)."""
    if pk is None:
        return None
    try:
        return model.objects.get(pk=pk)
    except model.DoesNotExist:
        from rest_framework.exceptions import ValidationError

        raise ValidationError({field: f"No {model._meta.verbose_name} with id {pk}."}) from None


class BaseModelViewSet(viewsets.ReadOnlyModelViewSet):
    """Base models (local diffusers folders or SD 1.x .safetensors files). POST registers one."""

    serializer_class = s.BaseModelSerializer
    permission_classes = [IsCurator]
    queryset = BaseModel.objects.select_related("job")

    @extend_schema(
        request=s.BaseModelRegisterSerializer,
        responses={
            202: OpenApiResponse(
                s.BaseModelSerializer,
                description="Accepted: state registering; poll /api/v1/jobs/<job>/ or this "
                "model until it is ready (or failed, with the reason in error).",
            ),
            400: OpenApiResponse(description="Refused"),
        },
    )
    def create(self, request):
        data = s.BaseModelRegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = services.base_model_register(**data.validated_data, user=request.user)
        return Response(s.BaseModelSerializer(model).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunFilter(django_filters.FilterSet):
    """``?status=`` reads the run's job: the one job state."""

    status = django_filters.ChoiceFilter(field_name="job__status", choices=Job.Status.choices)

    class Meta:
        model = TrainingRun
        fields = ["status", "dataset", "base_model", "sweep", "preset"]


class GenerationRequestFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(field_name="job__status", choices=Job.Status.choices)

    class Meta:
        model = GenerationRequest
        fields = ["status", "training_run", "passage", "item", "sampler"]


class TrainingRunViewSet(viewsets.ReadOnlyModelViewSet):
    """LoRA training runs. POST starts one (checked, then queued on the gpu queue)."""

    serializer_class = s.TrainingRunSerializer
    permission_classes = [IsCurator]
    throttle_scope = "expensive"  # POST queues GPU work (core.throttling)
    filterset_class = TrainingRunFilter

    def get_queryset(self):
        return selectors.training_run_list().prefetch_related(
            "checkpoints__archive", "validation_images__file"
        )

    @extend_schema(
        request=s.TrainingRunCreateSerializer,
        responses={201: s.TrainingRunSerializer, 400: OpenApiResponse(description="Refused")},
    )
    def create(self, request):
        from heritage.models import TrainingDataset

        data = s.TrainingRunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        run = services.training_run_create(
            dataset=_get(TrainingDataset, values["dataset"], "dataset"),
            base_model=_get(BaseModel, values.get("base_model"), "base_model"),
            preset=values["preset"],
            settings=values["settings"],
            name=values["name"],
            user=request.user,
        )
        return Response(self.get_serializer(run).data, status=status.HTTP_201_CREATED)


class TrainingRunCancelView(APIView):
    """Ask a queued or running training run to stop (it stops at its next step)."""

    permission_classes = [IsCurator]

    @extend_schema(
        request=None,
        responses={200: s.TrainingRunSerializer, 409: s.DetailSerializer},
    )
    def post(self, request, pk):
        run = get_object_or_404(TrainingRun, pk=pk)
        services.training_run_cancel(run=run)  # finished: a Conflict, answered 409
        return Response(s.TrainingRunSerializer(run, context={"request": request}).data)


class TrainingPresetsView(APIView):
    """The papers' presets: their settings and where each value comes from."""

    permission_classes = [NotAnExpert]

    @extend_schema(responses=s.TrainingPresetSerializer(many=True))
    def get(self, request):
        return Response(
            [
                {
                    "key": p.key,
                    "title": p.title,
                    "description": p.description,
                    "settings": p.settings,
                }
                for p in PRESETS.values()
            ]
        )


class SweepViewSet(viewsets.ReadOnlyModelViewSet):
    """Sweeps: one run per cell of a grid, with a comparison of final loss and metrics."""

    serializer_class = s.SweepSerializer
    permission_classes = [IsCurator]
    throttle_scope = "expensive"  # POST queues GPU work (core.throttling)
    queryset = Sweep.objects.all()

    @extend_schema(
        request=s.SweepCreateSerializer,
        responses={201: s.SweepSerializer, 400: OpenApiResponse(description="Refused")},
    )
    def create(self, request):
        from heritage.models import TrainingDataset

        data = s.SweepCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        sweep = services.sweep_create(
            name=values["name"] or "sweep",
            dataset=_get(TrainingDataset, values["dataset"], "dataset"),
            base_model=_get(BaseModel, values.get("base_model"), "base_model"),
            preset=values["preset"],
            settings=values["settings"],
            grid=values["grid"],
            user=request.user,
        )
        return Response(self.get_serializer(sweep).data, status=status.HTTP_201_CREATED)


class GenerationRequestViewSet(viewsets.ReadOnlyModelViewSet):
    """Generation requests. POST queues one (prompt or passage, sampler, seeds, LoRA...)."""

    serializer_class = s.GenerationRequestSerializer
    permission_classes = [IsCurator]
    throttle_scope = "expensive"  # POST queues GPU work (core.throttling)
    filterset_class = GenerationRequestFilter

    def get_queryset(self):
        return selectors.generation_request_list()

    @extend_schema(
        request=s.GenerationRequestCreateSerializer,
        responses={201: s.GenerationRequestSerializer, 400: OpenApiResponse(description="Refused")},
    )
    def create(self, request):
        from heritage.models import GazetteerPassage, HeritageItem

        data = s.GenerationRequestCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        obj = services.generation_request_create(
            **{
                **v,
                "passage": _get(GazetteerPassage, v.get("passage"), "passage"),
                "item": _get(HeritageItem, v.get("item"), "item"),
                "base_model": _get(BaseModel, v.get("base_model"), "base_model"),
                "training_run": _get(TrainingRun, v.get("training_run"), "training_run"),
                "checkpoint": _get(TrainingCheckpoint, v.get("checkpoint"), "checkpoint"),
            },
            user=request.user,
        )
        return Response(self.get_serializer(obj).data, status=status.HTTP_201_CREATED)


class GeneratedImageFilter(django_filters.FilterSet):
    """Ids as plain numbers on the visible images: an unknown or hidden id gives an empty page,
    never ModelChoiceFilter's "Select a valid choice" (which tells them apart)."""

    item = django_filters.NumberFilter(field_name="item_id")
    passage = django_filters.NumberFilter(field_name="passage_id")
    request = django_filters.NumberFilter(field_name="request_id")

    class Meta:
        model = GeneratedImage
        fields = ["approved", "condition", "item", "passage", "request"]


class GeneratedImageViewSet(viewsets.ReadOnlyModelViewSet):
    """AI-generated images. Visitors see the approved ones; curators see all; experts none."""

    serializer_class = s.GeneratedImageSerializer
    permission_classes = [NotAnExpert]
    filterset_class = GeneratedImageFilter

    def get_queryset(self):
        images = selectors.generated_image_list(user=self.request.user)
        if not selectors.user_is_curator(self.request.user):
            # Visitors never see an image made for an unpublished item or passage (its id).
            images = images.filter(
                Q(item__isnull=True) | Q(item__published=True, item__collection__published=True),
                Q(passage__isnull=True) | Q(passage__published=True),
            )
        return images


class GeneratedImageApproveView(APIView):
    """Approve an image for the kiosk (or withdraw approval).

    Refused (400, nothing changed) while the image is a near copy of a training image, or
    while an open expert study rates it blind. An image not yet compared with the training
    images: 202 and the job that compares and then approves (or fails with the refusal).
    """

    permission_classes = [IsCurator]

    @extend_schema(
        request=s.ApproveSerializer,
        responses={
            200: s.GeneratedImageSerializer,
            202: OpenApiResponse(
                s.ApprovalJobSerializer,
                description="Queued: the near-copy check runs first (job), then the approval.",
            ),
            400: s.DetailSerializer,
        },
    )
    def post(self, request, pk):
        image = get_object_or_404(GeneratedImage, pk=pk)
        data = s.ApproveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.generated_image_approve(
                image=image, approved=data.validated_data["approved"], user=request.user
            )
        except DjangoValidationError as exc:
            return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
        except ApprovalQueued as queued:
            job = queued.job
            return Response(
                {"job": str(job.pk), "job_url": f"/api/v1/jobs/{job.pk}/", "image": image.pk},
                status=status.HTTP_202_ACCEPTED,
            )
        return Response(s.GeneratedImageSerializer(image, context={"request": request}).data)


class PassageDraftPromptView(APIView):
    """Queue a prompt draft of a passage by the configured LLM (a job: the answer may take a
    while). When the job succeeds the draft is the passage's ``prompt_draft`` (not approved);
    when the model declines or fails, the job fails with the reason."""

    permission_classes = [IsCurator]

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(
                s.PromptDraftJobSerializer,
                description="Queued (or already queued for this passage): poll the job; "
                "its result has prompt_draft, its error says why there is none.",
            ),
            503: OpenApiResponse(s.DetailSerializer, description="Drafting is off"),
        },
    )
    def post(self, request, pk):
        from heritage.models import GazetteerPassage

        passage = get_object_or_404(GazetteerPassage, pk=pk)
        try:
            job = services.passage_prompt_draft_request(passage=passage, user=request.user)
        except PromptDraftError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(
            {"job": str(job.pk), "job_url": f"/api/v1/jobs/{job.pk}/", "passage": passage.pk},
            status=status.HTTP_202_ACCEPTED,
        )


class GeneratedImageDownloadView(APIView):
    """The image as a signed PNG (C2PA content credentials). Copies for anyone but curators
    carry the visible "AI-generated" mark when the deployment marks downloads; curators get
    the unmarked working copy unless ``?mark=1``. ``?lang=en|zh|ug`` picks the mark's language.
    """

    permission_classes = [NotAnExpert]

    @extend_schema(
        parameters=[
            OpenApiParameter("mark", str, enum=["0", "1"], required=False),
            OpenApiParameter("lang", str, enum=["en", "zh", "ug"], required=False),
        ],
        responses={(200, "image/png"): OpenApiTypes.BINARY},
    )
    def get(self, request, pk):
        from generation.views import _copy_response

        image = get_object_or_404(GeneratedImage.objects.select_related("file", "request"), pk=pk)
        return _copy_response(request, image)


class ContentCredentialsVerifyView(APIView):
    """Read the content credentials of an uploaded image (``file``, multipart) or of a stored
    generated image (``generated_image``): who made it, from what, whether they still hold."""

    permission_classes = [IsCurator]

    @extend_schema(
        request={
            "multipart/form-data": s.CredentialsVerifySerializer,
            "application/json": s.CredentialsVerifySerializer,
        },
        responses={200: s.CredentialReportSerializer},
    )
    def post(self, request):
        from generation import credentials

        data = s.CredentialsVerifySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data.get("file")
        try:
            if upload is not None:
                found = credentials.credentials_verify(data=upload.read(), filename=upload.name)
            else:
                pk = data.validated_data["generated_image"]
                image = _get(GeneratedImage, pk, "generated_image")
                found = credentials.generated_image_verify(image=image)
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from None
        return Response(found.as_dict())
