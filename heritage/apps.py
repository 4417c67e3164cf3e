from django.apps import AppConfig


class HeritageConfig(AppConfig):
    name = "heritage"
    verbose_name = "Heritage catalogue"

    def ready(self) -> None:
        from heritage import signals

        signals.connect()
