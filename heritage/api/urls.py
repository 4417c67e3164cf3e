"""This app's part of /api/v1/ (gathered by archives/api_urls.py)."""

from rest_framework.routers import DefaultRouter

from heritage.api import views


def register(router: DefaultRouter) -> None:
    """Register the catalogue viewsets on the shared router."""
    router.register("collections", views.CollectionViewSet, basename="collection")
    router.register("items", views.ItemViewSet, basename="item")
    router.register("images", views.ImageViewSet, basename="image")
    router.register("annotations", views.AnnotationViewSet, basename="annotation")
    router.register("motifs", views.MotifTermViewSet, basename="motif")
    router.register("passages", views.PassageViewSet, basename="passage")
    router.register("datasets", views.DatasetViewSet, basename="dataset")


urlpatterns: list = []
