"""HTML pages of this app."""

urlpatterns: list = []
