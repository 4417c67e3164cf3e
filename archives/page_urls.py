"""Staff pages of the preservation layer (fixity, bags). Filled in by the archives work."""

urlpatterns: list = []
