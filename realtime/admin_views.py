"""Staff pages of the admin that are not model lists: the live realtime dashboard.

The dashboard shows the figures of ``GET /websocket/stats`` plus messages per
minute over the last hour; its script polls ``dashboard_data`` with the admin
session, so the page stays current without reloading.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from realtime import selectors

# The page asks for fresh figures this often; stats() is a handful of COUNTs.
REFRESH_MS = 2000
# The chart covers the last hour, one bar per minute.
CHART_MINUTES = 60


def dashboard_figures() -> dict:
    """Everything the dashboard shows: ``stats()`` plus ``messagesPerMinute``."""
    return {
        **selectors.stats(),
        "messagesPerMinute": selectors.messages_per_minute(minutes=CHART_MINUTES),
    }


def dashboard(request: HttpRequest, *, admin_site) -> HttpResponse:
    """The realtime dashboard page (the admin site wraps it in its staff check)."""
    figures = dashboard_figures()
    context = {
        **admin_site.each_context(request),
        "title": "Realtime dashboard",
        "figures": figures,
        "data_url": reverse(
            "admin:realtime_dashboard_data", current_app=admin_site.name
        ),
        "refresh_ms": REFRESH_MS,
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/realtime/dashboard.html", context)


@never_cache
@require_GET
def dashboard_data(request: HttpRequest, *, admin_site) -> JsonResponse:
    """The dashboard's figures as JSON for staff; a 403 JSON (no redirect) otherwise."""
    if not admin_site.has_permission(request):
        return JsonResponse({"detail": "Log in to the admin as staff."}, status=403)
    return JsonResponse(dashboard_figures())
