from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The offline demo: procedural corpus, demo base model and its recipe, demo experiment,
    demo workflow and demo catalogue. Nothing below imports it."""

    name = "demo"
    verbose_name = "Demo"
