from django.apps import AppConfig


class ArchivesConfig(AppConfig):
    """The site package doubles as the preservation app: jobs, stored files, fixity, BagIt."""

    name = "archives"
    verbose_name = "Archives and jobs"

    def ready(self) -> None:
        # Each app registers its job handlers in its own jobs.py (no torch at import time).
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("jobs")

        from archives.downloads import archives_file_access, register_file_access

        register_file_access(archives_file_access)
