from django.apps import AppConfig


class HeritageConfig(AppConfig):
    name = "heritage"
