"""This app's part of /api/v1/ (gathered by archives/api_urls.py)."""

from django.urls import path  # noqa: F401
from rest_framework.routers import DefaultRouter


def register(router: DefaultRouter) -> None:
    """Register this app's read-only viewsets on the shared router."""


urlpatterns: list = []
