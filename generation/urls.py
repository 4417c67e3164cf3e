"""Curator pages under /curator/generation/."""

from django.urls import path

from generation import curator_views, views

app_name = "generation"

urlpatterns = [
    path("", views.index, name="index"),
    path("runs/new/", curator_views.run_new, name="run_new"),
    path("runs/<int:pk>/loss.svg", curator_views.run_loss_svg, name="run_loss"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run_cancel"),
    path("sweeps/new/", curator_views.sweep_new, name="sweep_new"),
    path("sweeps/<int:pk>/", curator_views.sweep_detail, name="sweep"),
    path("sweeps/<int:pk>/loss.svg", curator_views.sweep_loss_svg, name="sweep_loss"),
    path("requests/new/", views.request_new, name="request_new"),
    path("requests/<int:pk>/", views.request_detail, name="request"),
    path("images/<int:pk>/approve/", views.image_approve, name="image_approve"),
    path("images/<int:pk>/download/", views.image_download, name="image_download"),
    path("credentials/", views.credentials_verify, name="credentials"),
    path("passages/<int:pk>/draft/", views.passage_draft, name="passage_draft"),
]
