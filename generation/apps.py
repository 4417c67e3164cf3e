from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"

    def ready(self) -> None:
        # Downloads of this app's files are decided here (archives.downloads asks the registry).
        from archives.downloads import register_file_access
        from generation.file_access import stored_file_access

        register_file_access(stored_file_access)

        # Registers `check --deploy`: production needs the museum's C2PA certificate and key.
        import generation.credentials  # noqa: F401

        # Dataset pages and the freeze job crop examples at the buckets training uses.
        from generation.diffusion.buckets import plan
        from heritage.bucketing import BucketPlan, register_bucket_planner

        register_bucket_planner(lambda w, h, res, name: BucketPlan(*plan(w, h, res, name)))
