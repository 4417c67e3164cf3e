"""This app's part of /api/v1/ (gathered by archives/api_urls.py)."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from generation.api import views


def register(router: DefaultRouter) -> None:
    """Register this app's viewsets on the shared router."""
    router.register("base-models", views.BaseModelViewSet, basename="base-model")
    router.register("training-runs", views.TrainingRunViewSet, basename="training-run")
    router.register("sweeps", views.SweepViewSet, basename="sweep")
    router.register(
        "generation-requests", views.GenerationRequestViewSet, basename="generation-request"
    )
    router.register("generated-images", views.GeneratedImageViewSet, basename="generated-image")


urlpatterns: list = [
    path(
        "training-runs/<int:pk>/cancel/",
        views.TrainingRunCancelView.as_view(),
        name="training-run-cancel",
    ),
    path("training-presets/", views.TrainingPresetsView.as_view(), name="training-presets"),
    path(
        "generated-images/<int:pk>/approve/",
        views.GeneratedImageApproveView.as_view(),
        name="generated-image-approve",
    ),
    path(
        "generated-images/<int:pk>/download/",
        views.GeneratedImageDownloadView.as_view(),
        name="generated-image-download",
    ),
    path(
        "content-credentials/verify/",
        views.ContentCredentialsVerifyView.as_view(),
        name="content-credentials-verify",
    ),
    path(
        "passages/<int:pk>/draft-prompt/",
        views.PassageDraftPromptView.as_view(),
        name="passage-draft-prompt",
    ),
]
