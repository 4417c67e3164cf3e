"""API of the preservation layer: fixity runs, BagIt exports, validation and import.

Every endpoint is for archivists (``archives.manage_bags``, see ``core.roles``) and
superusers; curators and experts get 403.

POST /api/v1/archives/fixity/                  queue a fixity check
GET  /api/v1/archives/fixity/                  last runs and the files that failed
POST /api/v1/archives/bags/                    {scope, target, format} -> 202 export + job
GET  /api/v1/archives/bags/<id>/               export status (job, archive sha256)
GET  /api/v1/archives/bags/<id>/download/      the tar or zip
POST /api/v1/archives/bags/validate/           multipart "file": 200 report | 400 problems
POST /api/v1/archives/bags/import/             multipart "file": 201 summary | 400 problems

The two uploads answer 413 when the request is larger than ATELIER_BAG_MAX_UPLOAD_BYTES.
"""

from __future__ import annotations

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import APIException
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from archives.bag_registry import bag_scopes
from archives.bagit_export import bag_export_enqueue
from archives.bagit_import import bag_import
from archives.bagit_validate import BagRefused, bag_validate, upload_saved, upload_too_large
from archives.fixity import fixity_enqueue, fixity_problems
from archives.models import BagExport, FixityEvent
from archives.services import stored_file_open
from core.api import ErrorSerializer
from core.roles import is_archivist


class IsArchivist(permissions.BasePermission):
    message = "Only archivists (permission archives.manage_bags) may use the bag and fixity API."

    def has_permission(self, request, view) -> bool:
        return is_archivist(request.user)


class FixityEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = FixityEvent
        fields = [
            "id",
            "job",
            "started_at",
            "finished_at",
            "outcome",
            "checked",
            "ok_count",
            "changed_count",
            "missing_count",
            "changed",
            "missing",
            "trigger",
        ]


class BagExportSerializer(serializers.ModelSerializer):
    job_status = serializers.CharField(source="job.status", default=None, read_only=True)
    job_progress = serializers.FloatField(source="job.progress", default=None, read_only=True)
    archive_sha256 = serializers.CharField(source="archive.sha256", default=None, read_only=True)
    archive_size = serializers.IntegerField(source="archive.size", default=None, read_only=True)
    external_identifier = serializers.CharField(read_only=True)

    class Meta:
        model = BagExport
        fields = [
            "id",
            "scope",
            "target_id",
            "target_label",
            "archive_format",
            "job",
            "job_status",
            "job_progress",
            "bag_name",
            "external_identifier",
            "archive_sha256",
            "archive_size",
            "payload_files",
            "payload_bytes",
            "created_at",
        ]


class BagExportRequestSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=[])
    target = serializers.CharField(max_length=64)
    format = serializers.ChoiceField(choices=["tar", "zip"], default="tar")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The scopes the apps registered (their bag.py), known once the apps are ready.
        self.fields["scope"].choices = sorted(bag_scopes())


class BagUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The bag as a tar or zip archive.")


class FailingFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    sha256 = serializers.CharField()
    last_fixity_at = serializers.DateTimeField(allow_null=True)


class FixityReportSerializer(serializers.Serializer):
    events = FixityEventSerializer(many=True, help_text="The last 20 runs, newest first.")
    failing_files = serializers.IntegerField(help_text="Files whose last check failed.")
    failing = FailingFileSerializer(many=True)


class JobQueuedSerializer(serializers.Serializer):
    job = serializers.UUIDField()
    status = serializers.CharField()


class FixityView(APIView):
    permission_classes = [IsArchivist]
    serializer_class = FixityEventSerializer

    @extend_schema(responses=FixityReportSerializer, summary="Last fixity runs and failing files")
    def get(self, request):
        problems, count = fixity_problems()
        return Response(
            {
                "events": FixityEventSerializer(FixityEvent.objects.all()[:20], many=True).data,
                "failing_files": count,
                "failing": [
                    {"name": f.name, "sha256": f.sha256, "last_fixity_at": f.last_fixity_at}
                    for f in problems
                ],
            }
        )

    @extend_schema(request=None, responses={202: JobQueuedSerializer}, summary="Queue a check")
    def post(self, request):
        job = fixity_enqueue(user=request.user, trigger="api")
        return Response({"job": str(job.pk), "status": job.status}, status=status.HTTP_202_ACCEPTED)


class BagExportListView(APIView):
    permission_classes = [IsArchivist]
    serializer_class = BagExportSerializer

    @extend_schema(operation_id="archives_bags_list", responses=BagExportSerializer(many=True))
    def get(self, request):
        exports = BagExport.objects.select_related("job", "archive")[:50]
        return Response(BagExportSerializer(exports, many=True).data)

    @extend_schema(request=BagExportRequestSerializer, responses={202: BagExportSerializer})
    def post(self, request):
        incoming = BagExportRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        # An unknown target is a core.errors.Refused: 400 with its message.
        export = bag_export_enqueue(
            scope=incoming.validated_data["scope"],
            target_id=incoming.validated_data["target"],
            archive_format=incoming.validated_data["format"],
            user=request.user,
        )
        return Response(BagExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)


class BagExportDetailView(APIView):
    permission_classes = [IsArchivist]
    serializer_class = BagExportSerializer

    def get(self, request, pk):
        export = get_object_or_404(BagExport.objects.select_related("job", "archive"), pk=pk)
        return Response(BagExportSerializer(export).data)


class BagExportDownloadView(APIView):
    permission_classes = [IsArchivist]
    serializer_class = BagExportSerializer

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            409: OpenApiResponse(ErrorSerializer, description="The bag is not ready yet."),
        }
    )
    def get(self, request, pk):
        export = get_object_or_404(BagExport.objects.select_related("archive"), pk=pk)
        if export.archive is None:
            return Response(
                {"detail": "The bag is not ready yet; see the export's job."},
                status=status.HTTP_409_CONFLICT,
            )
        return bag_download_response(export)


def bag_download_response(export: BagExport) -> FileResponse:
    suffix = "tar" if export.archive_format == BagExport.Format.TAR else "zip"
    response = FileResponse(
        stored_file_open(export.archive),
        as_attachment=True,
        filename=f"{export.bag_name}.{suffix}",
        content_type=export.archive.content_type or "application/octet-stream",
    )
    response["Digest"] = f"sha-256={export.archive.sha256}"
    return response


class UploadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "upload_too_large"


class BagUploadView(APIView):
    """A bag upload: refused by its Content-Length before the body is read or spooled."""

    permission_classes = [IsArchivist]
    parser_classes = [MultiPartParser, FormParser]
    serializer_class = BagUploadSerializer

    def initial(self, request, *args, **kwargs):
        # Before authentication: session auth's CSRF check would parse the whole body.
        problem = upload_too_large(request.META.get("CONTENT_LENGTH"))
        if problem:
            raise UploadTooLarge(problem)
        super().initial(request, *args, **kwargs)

    def refused(self, key: str, exc: BagRefused) -> Response:
        return Response({key: False, "problems": exc.problems}, status=status.HTTP_400_BAD_REQUEST)


def _upload(request):
    upload = request.FILES.get("file")
    if upload is None:
        raise BagRefused(["Upload the bag as a tar or zip file in the form field 'file'."])
    return upload_saved(upload)


class BagValidateView(BagUploadView):
    def post(self, request):
        try:
            with _upload(request) as path:
                report = bag_validate(path)
        except BagRefused as exc:
            return self.refused("valid", exc)
        return Response(
            report.as_dict(),
            status=status.HTTP_200_OK if report.valid else status.HTTP_400_BAD_REQUEST,
        )


class BagImportView(BagUploadView):
    def post(self, request):
        try:
            with _upload(request) as path:
                done = bag_import(path=path, user=request.user)
        except BagRefused as exc:
            return self.refused("imported", exc)
        return Response(
            {
                "imported": True,
                "id": done.pk,
                "bag_name": done.bag_name,
                "external_identifier": done.external_identifier,
                "scope": done.scope,
                "root": getattr(done, "root_key", None),
                "root_id": getattr(done, "root_pk", None),
                "records": done.records,
                "files": done.files,
                # People in the bag: linked to accounts here by username, never created.
                "users": done.users_report,
            },
            status=status.HTTP_201_CREATED,
        )
