"""This app's part of /api/v1/ (gathered by archives/api_urls.py)."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from evaluation.api import views


def register(router: DefaultRouter) -> None:
    """Register this app's viewsets on the shared router."""
    router.register("evaluation/studies", views.StudyViewSet, basename="evaluation-study")
    router.register("evaluation/panels", views.PanelViewSet, basename="evaluation-panel")


urlpatterns: list = [
    path(
        "evaluation/studies/<int:pk>/items/<str:token>/ratings/",
        views.RatingSubmitView.as_view(),
        name="evaluation-rating-submit",
    ),
    path(
        "evaluation/studies/<int:pk>/close/",
        views.StudyCloseView.as_view(),
        name="evaluation-study-close",
    ),
    path(
        "evaluation/studies/<int:pk>/metrics/",
        views.StudyMetricsView.as_view(),
        name="evaluation-study-metrics",
    ),
    path(
        "evaluation/studies/<int:pk>/report/",
        views.StudyReportView.as_view(),
        name="evaluation-study-report",
    ),
    path(
        "evaluation/studies/<int:pk>/references/",
        views.StudyReferencesView.as_view(),
        name="evaluation-study-references",
    ),
    path(
        "evaluation/near-copies/", views.NearCopyFlagsView.as_view(), name="evaluation-near-copies"
    ),
]
