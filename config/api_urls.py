"""/api/v1/: one router for every app's read-only viewsets, plus each app's action views.

Each app's ``api/urls.py`` offers ``register(router)`` for viewsets and ``urlpatterns`` for the
small one-action views; they are gathered here so the API root lists everything.
"""

from django.urls import path
from rest_framework.routers import DefaultRouter

from archives import package_api
from evaluation.api import urls as evaluation_api
from generation.api import urls as generation_api
from heritage.api import urls as heritage_api
from jobs import api as jobs_api

router = DefaultRouter()
router.register("jobs", jobs_api.JobViewSet, basename="job")
for app_api in (heritage_api, generation_api, evaluation_api):
    app_api.register(router)

urlpatterns = [
    path("jobs/<uuid:pk>/cancel/", jobs_api.JobCancelView.as_view(), name="job-cancel"),
    path("archives/fixity/", package_api.FixityView.as_view(), name="archives-fixity"),
    path("archives/bags/", package_api.BagExportListView.as_view(), name="archives-bags"),
    path("archives/bags/validate/", package_api.BagValidateView.as_view(), name="bag-validate"),
    path("archives/bags/import/", package_api.BagImportView.as_view(), name="bag-import"),
    path("archives/bags/<uuid:pk>/", package_api.BagExportDetailView.as_view(), name="bag-detail"),
    path(
        "archives/bags/<uuid:pk>/download/",
        package_api.BagExportDownloadView.as_view(),
        name="bag-download",
    ),
    *heritage_api.urlpatterns,
    *generation_api.urlpatterns,
    *evaluation_api.urlpatterns,
    *router.urls,
]
