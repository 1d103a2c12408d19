from django.apps import AppConfig


class BamchatConfig(AppConfig):
    """The project package as an app: process-wide setup that needs Django loaded."""

    name = "bamchat"
    verbose_name = "BAM Chat"

    def ready(self) -> None:
        from bamchat.logs import install_access_log_redaction

        install_access_log_redaction()  # imports daphne's server (and its reactor)

        from bamchat.daphne_request import install_body_limits

        install_body_limits()
