"""Staff pages of the admin that are not model lists: live connections and the
realtime dashboard.

Live sockets are not database rows, so their list is a page of its own: every
socket on every process, searchable, with the "Disconnect selected sockets"
action. The dashboard shows the figures of ``GET /websocket/stats`` plus
messages per minute over the last hour, and the sections other apps register
(push deliveries, and push devices by platform); its script polls
``dashboard_data`` with the admin session, so the page stays current without
reloading.
"""

from datetime import UTC, datetime

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from messaging.selectors import messages_per_minute
from realtime import selectors, services

# The page asks for fresh figures this often; stats() is a handful of COUNTs.
REFRESH_MS = 2000
# The chart covers the last hour, one bar per minute.
CHART_MINUTES = 60


# Figures other apps add to the dashboard, by key: {key: function() -> dict}.
dashboard_sections: dict = {}


def register_dashboard_section(key: str, figures) -> None:
    """Let an app add ``figures()`` to the dashboard's data under ``key``."""
    dashboard_sections[key] = figures


def dashboard_figures() -> dict:
    """Everything the dashboard shows: ``stats()``, ``messagesPerMinute`` and the
    sections other apps registered."""
    return {
        **selectors.stats(),
        "messagesPerMinute": messages_per_minute(minutes=CHART_MINUTES),
        **{key: figures() for key, figures in dashboard_sections.items()},
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


def _matches(record: dict, query: str) -> bool:
    query = query.lower()
    return any(
        query in str(record.get(key, "")).lower()
        for key in ("sid", "username", "address", "process", "transport")
    )


def connections(request: HttpRequest, *, admin_site) -> HttpResponse:
    """Live sockets of every process; POST runs the disconnect action."""
    if not request.user.has_perm("realtime.view_serverprocess"):
        return HttpResponse("You may not see live connections.", status=403)
    if request.method == "POST":
        sids = request.POST.getlist("_selected_action")
        if request.POST.get("action") == "disconnect_sockets" and sids:
            if not request.user.has_perm("realtime.disconnect_socket"):
                messages.error(request, "You may not disconnect sockets.")
            else:
                count = services.connections_disconnect(sids=sids)
                messages.success(
                    request,
                    f"Asked the server processes to disconnect {count} "
                    f"socket{'s' if count != 1 else ''}; they leave this list "
                    "once their processes have closed them.",
                )
        else:
            messages.warning(request, "Select sockets and an action first.")
        return redirect(request.get_full_path())
    query = request.GET.get("q", "").strip()
    rows = [r for r in selectors.connections() if not query or _matches(r, query)]
    for row in rows:
        row["connected_at"] = datetime.fromtimestamp(row["since"], UTC)
    context = {
        **admin_site.each_context(request),
        "title": "Live connections",
        "rows": rows,
        "query": query,
        "can_disconnect": request.user.has_perm("realtime.disconnect_socket"),
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/realtime/connections.html", context)
