from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Realtime"

    def ready(self) -> None:
        from realtime import signals  # noqa: F401 - connects the model receivers
        from realtime.daphne_ws import (
            install_output_budget,
            install_prompt_writes,
            plain_autobahn_log_values,
        )

        install_output_budget()
        install_prompt_writes()
        plain_autobahn_log_values()
