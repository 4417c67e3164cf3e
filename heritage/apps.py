from django.apps import AppConfig


class HeritageConfig(AppConfig):
    name = "heritage"
    verbose_name = "Heritage catalogue"

    def ready(self) -> None:
        from heritage import signals

        signals.connect()

        from archives.downloads import register_file_access
        from heritage.file_access import stored_file_access

        register_file_access(stored_file_access)
