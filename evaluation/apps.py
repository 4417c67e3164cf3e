from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "evaluation"

    def ready(self) -> None:
        # Downloads of this app's files are decided here (archives.downloads asks the registry).
        from archives.downloads import register_download_name, register_file_access
        from evaluation.file_access import download_name, stored_file_access

        register_file_access(stored_file_access)
        register_download_name(download_name)
