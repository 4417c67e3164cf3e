"""Training pages under /curator/generation/ (mounted before generation.urls, so the run form
here is the one served at runs/new/; the URL names in generation.urls still resolve to it)."""

from django.urls import path

from generation import curator_views as views

app_name = "training"

urlpatterns = [
    path("runs/new/", views.run_new, name="run_new"),
    path("runs/<int:pk>/loss.svg", views.run_loss_svg, name="run_loss"),
    path("sweeps/new/", views.sweep_new, name="sweep_new"),
    path("sweeps/<int:pk>/", views.sweep_detail, name="sweep"),
    path("sweeps/<int:pk>/loss.svg", views.sweep_loss_svg, name="sweep_loss"),
]
