"""Admin of the heritage app."""
