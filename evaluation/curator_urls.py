"""Curator pages of evaluation, under /curator/evaluation/."""

from django.urls import path

from evaluation import curator_views as views

app_name = "evaluation-curator"

urlpatterns = [
    path("panels/", views.panels, name="panels"),
    path("panels/<int:pk>/members/", views.panel_members, name="panel_members"),
    path("approvals/", views.approvals, name="approvals"),
    path("approvals/<int:pk>/", views.approve, name="approve"),
]
