from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """The site: settings, root URLs, the base template and site-wide pages (login, errors)."""

    name = "config"
    verbose_name = "Site"
