"""Staff pages of the preservation layer (fixity, bags), under /archives/."""

from django.urls import path

from archives import page_views

app_name = "archives"

urlpatterns = [
    path("", page_views.index, name="index"),
    path("fixity/", page_views.fixity_run, name="fixity-run"),
    path("exports/", page_views.export_create, name="export-create"),
    path("exports/<uuid:pk>/download/", page_views.export_download, name="export-download"),
    path("validate/", page_views.validate, name="validate"),
    path("import/", page_views.import_bag, name="import"),
]
