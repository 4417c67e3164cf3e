"""/iiif/: Presentation 3.0 (collections, manifests) and Image API 3.0 level1."""

from django.urls import path, re_path

from heritage import iiif_views

app_name = "iiif"

urlpatterns = [
    path("collections", iiif_views.top_collection, name="collections"),
    path("collections/<slug:slug>", iiif_views.collection, name="collection"),
    path("items/<int:pk>/manifest", iiif_views.manifest, name="manifest"),
    path("image/<int:pk>", iiif_views.image_base, name="image-base"),
    path("image/<int:pk>/info.json", iiif_views.image_info, name="image-info"),
    re_path(
        r"^image/(?P<pk>\d+)/(?P<region>[^/]+)/(?P<size>[^/]+)/(?P<rotation>[^/]+)/"
        r"(?P<quality>[a-z]+)\.(?P<fmt>[a-z]+)$",
        iiif_views.image,
        name="image",
    ),
]
