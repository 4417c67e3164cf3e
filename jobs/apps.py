from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Background jobs: the Job table, the RQ queues, the reconciler and the workers."""

    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        # Each app registers its job handlers in its own jobs.py (no torch at import time).
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("jobs")
