"""Admin of the generation app."""
