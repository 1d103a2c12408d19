from django.urls import re_path

from realtime import views

urlpatterns = [
    re_path(r"^stats/?$", views.StatsView.as_view(), name="ws-stats"),
    re_path(
        r"^presence/(?P<user_id>[^/]+)/?$",
        views.PresenceView.as_view(),
        name="ws-presence",
    ),
    re_path(
        r"^bam/(?P<bam_id>[^/]+)/online/?$",
        views.BamOnlineView.as_view(),
        name="ws-bam-online",
    ),
    re_path(r"^notify/?$", views.NotifyView.as_view(), name="ws-notify"),
    re_path(r"^broadcast/?$", views.BroadcastView.as_view(), name="ws-broadcast"),
]
