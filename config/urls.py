"""Root URLs: pages, admin, API v1 with its schema and offline docs, IIIF, health."""

import functools

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import user_passes_test
from django.core.exceptions import PermissionDenied
from django.urls import URLPattern, include, path
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns
from drf_spectacular.views import SpectacularAPIView

from archives import downloads
from config import curator_views, views

handler404 = "config.views.not_found"
handler500 = "config.views.server_error"

# The RQ dashboard shows every job's arguments and can delete or requeue jobs: superusers only
# (django_rq itself admits any staff member, and curators are staff).
superuser_required = user_passes_test(lambda u: u.is_active and u.is_superuser, "admin:login")


def _superuser_or_token(view):
    """stats.json and metrics also take django_rq's API token (the view checks it); the view
    admits any staff session too, so a session here must be a superuser's."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        user = request.user
        bearer = request.headers.get("Authorization", "").startswith("Bearer ")
        if (user.is_active and user.is_superuser) or (bearer and not user.is_staff):
            return view(request, *args, **kwargs)
        raise PermissionDenied("Superusers only.")

    return wrapped


rq_urlpatterns = [
    URLPattern(p.pattern, _superuser_or_token(p.callback), p.default_args, p.name)
    for p in get_api_urlpatterns()
] + get_admin_urlpatterns(view_wrapper=superuser_required)

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/rq/", include((rq_urlpatterns, "django_rq"))),
    path("files/<uuid:token>", downloads.download, name="stored-file"),
    path("admin/", admin.site.urls),
    # After login without ?next=: curators to their home, experts to their studies.
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(next_page="landing"),
        name="login",
    ),
    path("accounts/landing/", curator_views.landing, name="landing"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", views.api_docs, name="api-docs"),
    path("api/redoc/", views.api_redoc, name="api-redoc"),
    path("iiif/", include("heritage.iiif_urls")),
    path("curator/", curator_views.home, name="curator-home"),
    path("curator/catalogue/", include("heritage.curator_urls")),
    path("curator/generation/", include("generation.urls")),
    path("curator/evaluation/", include("evaluation.curator_urls")),
    path("evaluation/", include("evaluation.urls")),
    path("archives/", include("archives.page_urls")),
    path("jobs/", include("jobs.urls")),
    path("", include("heritage.urls")),
]
# No static(MEDIA_URL), not even in development: files go through downloads.download only.
