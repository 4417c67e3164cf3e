"""URLs for bench/bench_catalogue_api.py: the site plus a trivial JSON view as the baseline."""

from django.http import JsonResponse
from django.urls import include, path


def trivial(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/trivial", trivial),
    path("", include("config.urls")),
]
