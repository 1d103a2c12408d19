"""Admin for realtime state: server processes, recorded presence, live sockets.

Rows here are written by the server processes themselves, so the admin only
reads them. Live sockets are not rows: their page (with the disconnect action)
and the realtime dashboard hang off ``ServerProcessAdmin``'s URLs and are linked
from the admin home, the Realtime app page and the server process list.
"""

from functools import partial

from django.contrib import admin
from django.urls import path

from realtime import admin_views, selectors
from realtime.models import Presence, ServerProcess

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


@admin.register(Presence)
class PresenceAdmin(ReadOnlyAdmin):
    list_display = ["user", "status", "last_seen", "sockets"]
    list_select_related = ["user"]
    list_filter = ["status"]
    search_fields = ["user__username"]

    @admin.display(description="live sockets")
    def sockets(self, obj: Presence) -> int:
        return selectors.user_socket_count(user_id=obj.user_id)


@admin.register(ServerProcess)
class ServerProcessAdmin(ReadOnlyAdmin):
    list_display = ["id", "host", "pid", "started_at", "last_heartbeat", "connections"]
    search_fields = ["id", "host"]

    @admin.display(description="connections")
    def connections(self, obj: ServerProcess) -> int:
        return selectors.process_socket_counts().get(obj.id, 0)

    def get_urls(self):
        site = self.admin_site
        return [
            path(
                "dashboard/",
                site.admin_view(partial(admin_views.dashboard, admin_site=site)),
                name="realtime_dashboard",
            ),
            path(
                "connections/",
                site.admin_view(partial(admin_views.connections, admin_site=site)),
                name="realtime_connections",
            ),
            path(
                "dashboard/data/",
                partial(admin_views.dashboard_data, admin_site=site),
                name="realtime_dashboard_data",
            ),
            *super().get_urls(),
        ]
