"""Job status for API clients: poll ``GET /api/v1/jobs/<id>/`` for status and progress."""

from __future__ import annotations

from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer
from core.roles import is_archivist
from jobs.models import Job
from jobs.queue import job_cancel


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "queue",
            "status",
            "progress",
            "message",
            "data",
            "result",
            "error",
            "attempts",
            "max_attempts",
            "cancel_requested",
            "worker_name",
            "created_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
        ]
        read_only_fields = fields


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """Background jobs. Staff and curators see all; archivists also see every bag and fixity
    job (``archives.*``, cron's too); other signed-in users see the jobs they started."""

    serializer_class = JobSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_fields = ["kind", "status", "queue"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Job.objects.none()
        user = self.request.user
        queryset = Job.objects.all()
        if user.is_staff or user.groups.filter(name="curator").exists():
            return queryset
        if is_archivist(user):
            return queryset.filter(Q(created_by=user) | Q(kind__startswith="archives."))
        return queryset.filter(created_by=user)


class JobCancelView(APIView):
    """Cancel a queued job at once, or ask a running one to stop (409 when already finished)."""

    serializer_class = JobSerializer
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=None,
        responses={
            200: JobSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The job has already finished."),
        },
    )
    def post(self, request, pk):
        job = get_object_or_404(JobViewSet(request=request).get_queryset(), pk=pk)
        job = job_cancel(job=job)  # a finished job: JobStateError, a Conflict (409)
        return Response(JobSerializer(job).data)
