"""Admin for live realtime state: connections, presence and server processes.

Rows here are written by the server processes themselves, so the admin only
reads them; the one operation, disconnecting sockets, goes through a service.
The realtime dashboard page hangs off ``ServerProcessAdmin``'s URLs and is linked
from the admin home, the Realtime app page and the server process list.
"""

from functools import partial

from django.contrib import admin, messages
from django.db.models import Count
from django.urls import path
from django.utils.translation import ngettext

from realtime import admin_views, services
from realtime.models import Connection, Presence, ServerProcess

# The admin home gains a link to the dashboard, unless a project-wide index
# template is already set (then that template should link to it).
if admin.site.index_template is None:
    admin.site.index_template = "admin/realtime/index.html"


class ReadOnlyAdmin(admin.ModelAdmin):
    """A model admin that lists and shows rows but never adds, edits or deletes them."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Connection)
class ConnectionAdmin(ReadOnlyAdmin):
    list_display = [
        "sid",
        "user",
        "process",
        "transport",
        "client_address",
        "connected_at",
        "last_seen",
    ]
    list_select_related = ["user", "process"]
    list_filter = ["transport", "process"]
    search_fields = ["user__username", "sid", "client_address"]
    actions = ["disconnect_sockets"]

    def has_disconnect_permission(self, request) -> bool:
        """Disconnecting ends live sockets, so it takes the delete-connection right."""
        return request.user.has_perm("realtime.delete_connection")

    @admin.action(description="Disconnect selected sockets", permissions=["disconnect"])
    def disconnect_sockets(self, request, queryset) -> None:
        """Ask the process holding each selected socket to disconnect it."""
        sids = list(queryset.values_list("sid", flat=True))
        count = services.connections_disconnect(sids=sids)
        self.message_user(
            request,
            ngettext(
                "Asked the server processes to disconnect %d socket; "
                "it leaves this list once its process has closed it.",
                "Asked the server processes to disconnect %d sockets; "
                "they leave this list once their processes have closed them.",
                count,
            )
            % count,
            messages.SUCCESS,
        )


@admin.register(Presence)
class PresenceAdmin(ReadOnlyAdmin):
    list_display = ["user", "status", "last_seen", "sockets"]
    list_select_related = ["user"]
    list_filter = ["status"]
    search_fields = ["user__username"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(socket_count=Count("user__connections"))
        )

    @admin.display(description="sockets", ordering="socket_count")
    def sockets(self, obj: Presence) -> int:
        return obj.socket_count


@admin.register(ServerProcess)
class ServerProcessAdmin(ReadOnlyAdmin):
    list_display = ["id", "host", "pid", "started_at", "last_heartbeat", "connections"]
    search_fields = ["id", "host"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(connection_count=Count("connections"))
        )

    @admin.display(description="connections", ordering="connection_count")
    def connections(self, obj: ServerProcess) -> int:
        return obj.connection_count

    def get_urls(self):
        site = self.admin_site
        return [
            path(
                "dashboard/",
                site.admin_view(partial(admin_views.dashboard, admin_site=site)),
                name="realtime_dashboard",
            ),
            path(
                "dashboard/data/",
                partial(admin_views.dashboard_data, admin_site=site),
                name="realtime_dashboard_data",
            ),
            *super().get_urls(),
        ]
