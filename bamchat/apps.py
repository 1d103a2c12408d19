from django.apps import AppConfig


class BamchatConfig(AppConfig):
    """The project package as an app: process-wide setup that needs Django loaded."""

    name = "bamchat"
    verbose_name = "BAM Chat"

    def ready(self) -> None:
        from bamchat.logs import install_access_log_redaction

        install_access_log_redaction()
