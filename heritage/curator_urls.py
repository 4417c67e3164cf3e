"""Curator pages of the catalogue, under /curator/catalogue/."""

from django.urls import path

from heritage import curator_views as views

app_name = "catalogue"

urlpatterns = [
    path("", views.collections, name="collections"),
    path("collections/<slug:slug>/", views.collection_detail, name="collection"),
    path("items/<int:pk>/", views.item_detail, name="item"),
    path("items/<int:pk>/images/", views.image_upload, name="image_upload"),
    path("images/<int:pk>/", views.image_detail, name="image"),
    path("annotations/<int:pk>/", views.annotation_edit, name="annotation"),
    path("motifs/", views.motifs, name="motifs"),
    path("motifs/<slug:slug>/", views.motif_edit, name="motif"),
    path("passages/", views.passages, name="passages"),
    path("passages/<int:pk>/", views.passage_detail, name="passage"),
    path("import/", views.catalogue_import, name="import"),
    path("import/template.csv", views.import_template, name="import_template"),
    path("datasets/", views.datasets, name="datasets"),
    path("datasets/count/", views.dataset_count, name="dataset_count"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset"),
    path("datasets/<int:pk>/freeze/", views.dataset_freeze, name="dataset_freeze"),
    path("datasets/<int:pk>/progress/", views.dataset_progress, name="dataset_progress"),
    path("datasets/<int:pk>/new-version/", views.dataset_new_version, name="dataset_new_version"),
]
