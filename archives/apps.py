from django.apps import AppConfig


class ArchivesConfig(AppConfig):
    """Preservation: stored files, fixity, BagIt packages, PREMIS provenance."""

    name = "archives"
    verbose_name = "Archives"

    def ready(self) -> None:
        from archives.downloads import archives_file_access, register_file_access

        register_file_access(archives_file_access)
        # Each app registers its bag scopes and records in its own bag.py (bag_registry).
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("bag")
