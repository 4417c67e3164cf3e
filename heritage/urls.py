"""Kiosk pages (at the site root)."""

from django.urls import path

from heritage import views

urlpatterns = [
    path("", views.attract, name="kiosk-attract"),
    path("browse/", views.browse, name="kiosk-browse"),
    path("collections/<slug:slug>/", views.collection, name="kiosk-collection"),
    path("categories/<str:category>/", views.category, name="kiosk-category"),
    path("search/", views.search, name="kiosk-search"),
    path("items/<int:pk>/", views.item, name="kiosk-item"),
    path("companions/<int:pk>.img", views.companion_image, name="kiosk-companion"),
]
