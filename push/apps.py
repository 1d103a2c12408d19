from django.apps import AppConfig


class PushConfig(AppConfig):
    name = "push"
    verbose_name = "Push notifications"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from push import signals  # noqa: F401 - connects the message receiver
        from push.metrics import PushQueueCollector
        from push.selectors import delivery_figures, device_figures
        from realtime.admin_views import register_dashboard_section

        register_dashboard_section("push", delivery_figures)
        register_dashboard_section("pushDevices", device_figures)
        REGISTRY.register(PushQueueCollector())
