from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from messaging import (
            receivers,  # noqa: F401 - keeps audience versions
            tasks,  # noqa: F401 - registers the periodic cleanup
        )
