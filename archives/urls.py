"""Root URLs: pages, admin, API v1 with its schema and offline docs, IIIF, health."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from archives import views

handler404 = "archives.views.not_found"
handler500 = "archives.views.server_error"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("archives.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", views.api_docs, name="api-docs"),
    path("api/redoc/", views.api_redoc, name="api-redoc"),
    path("iiif/", include("heritage.iiif_urls")),
    path("curator/generation/", include("generation.urls")),
    path("evaluation/", include("evaluation.urls")),
    path("archives/", include("archives.page_urls")),
    path("", include("heritage.urls")),
]
# Development only (static() is empty unless DEBUG): production serves media from the storage
# backend or the front web server (docs/deploy.md).
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
