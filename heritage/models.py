"""Models of the heritage app."""
