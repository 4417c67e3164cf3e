"""/api/v1/: one router for every app's read-only viewsets, plus each app's action views.

Each app's ``api/urls.py`` offers ``register(router)`` for viewsets and ``urlpatterns`` for the
small one-action views; they are gathered here so the API root lists everything.
"""

from django.urls import path
from rest_framework.routers import DefaultRouter

from archives import api_views
from evaluation.api import urls as evaluation_api
from generation.api import urls as generation_api
from heritage.api import urls as heritage_api

router = DefaultRouter()
router.register("jobs", api_views.JobViewSet, basename="job")
for app_api in (heritage_api, generation_api, evaluation_api):
    app_api.register(router)

urlpatterns = [
    path("jobs/<uuid:pk>/cancel/", api_views.JobCancelView.as_view(), name="job-cancel"),
    *heritage_api.urlpatterns,
    *generation_api.urlpatterns,
    *evaluation_api.urlpatterns,
    *router.urls,
]
