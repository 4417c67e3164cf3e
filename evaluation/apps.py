from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "evaluation"

    def ready(self) -> None:
        # Downloads of this app's files are decided here (archives.downloads asks the registry).
        from archives.downloads import register_download_name, register_file_access
        from evaluation.file_access import download_name, stored_file_access

        register_file_access(stored_file_access)
        register_download_name(download_name)
        # What generation asks of evaluation (generation.hooks): no kiosk approval of an image
        # rated blind in an open study, nor of a near copy; a finished run's validation metrics.
        from evaluation.approval import kiosk_approval_check
        from evaluation.validation_metrics import training_validation_metrics
        from generation.hooks import register_approval_check, register_run_metrics

        register_approval_check(kiosk_approval_check)
        register_run_metrics(training_validation_metrics)
