"""Admin of the evaluation app."""
