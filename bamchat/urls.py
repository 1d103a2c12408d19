from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from bamchat.pages import home, web_app
from bamchat.views import MetricsView
from messaging import attachment_views, lifecycle_views, search_views
from messaging import views as messaging_views
from push import views as push_views
from realtime import contract_views
from realtime import views as realtime_views

router = SimpleRouter()
router.trailing_slash = "/?"  # every REST path works with and without the slash
router.register("bams", messaging_views.BamViewSet, basename="bam")

urlpatterns = [
    path("", home, name="home"),
    path("app/", web_app, name="web-app"),
    path("admin/", admin.site.urls),
    re_path(r"^auth/me/?$", realtime_views.MeView.as_view(), name="auth-me"),
    re_path(r"^auth/", include("accounts.urls")),
    re_path(
        r"^bams/(?P<bam_id>[^/]+)/participants/?$",
        messaging_views.ParticipantListView.as_view(),
        name="bam-participants",
    ),
    re_path(
        r"^bams/(?P<bam_id>[^/]+)/participants/(?P<user_id>[^/]+)/?$",
        messaging_views.ParticipantDetailView.as_view(),
        name="bam-participant",
    ),
    re_path(
        r"^bams/(?P<bam_id>[^/]+)/messages/?$",
        messaging_views.MessageListView.as_view(),
        name="bam-messages",
    ),
    re_path(
        r"^bams/(?P<bam_id>[^/]+)/messages/(?P<message_id>[^/]+)/?$",
        lifecycle_views.MessageDetailView.as_view(),
        name="bam-message",
    ),
    re_path(
        r"^bams/(?P<bam_id>[^/]+)/messages/(?P<message_id>[^/]+)/reactions/?$",
        lifecycle_views.ReactionListView.as_view(),
        name="bam-message-reactions",
    ),
    re_path(
        r"^bams/(?P<bam_id>[^/]+)/messages/(?P<message_id>[^/]+)/reactions/"
        r"(?P<emoji>[^/]+)/?$",
        lifecycle_views.ReactionDetailView.as_view(),
        name="bam-message-reaction",
    ),
    re_path(
        r"^bams/(?P<bam_id>[^/]+)/read/?$",
        lifecycle_views.ReadView.as_view(),
        name="bam-read",
    ),
    re_path(
        r"^bams/(?P<bam_id>[^/]+)/membership/?$",
        push_views.MembershipView.as_view(),
        name="bam-membership",
    ),
    re_path(r"^push/", include("push.urls")),
    re_path(
        r"^search/messages/?$",
        search_views.MessageSearchView.as_view(),
        name="search-messages",
    ),
    re_path(
        r"^bams/(?P<bam_id>[^/]+)/attachments/?$",
        attachment_views.AttachmentUploadView.as_view(),
        name="bam-attachments",
    ),
    re_path(
        r"^attachments/(?P<attachment_id>[^/]+)/?$",
        attachment_views.AttachmentDownloadView.as_view(),
        name="attachment",
    ),
    re_path(
        r"^attachments/(?P<attachment_id>[^/]+)/thumbnail/?$",
        attachment_views.AttachmentThumbnailView.as_view(),
        name="attachment-thumbnail",
    ),
    re_path(r"^websocket/", include("realtime.urls")),
    re_path(r"^health/?$", realtime_views.HealthView.as_view(), name="health"),
    re_path(r"^metrics/?$", MetricsView.as_view(), name="metrics"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(
        r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"
    ),
    path("api/asyncapi.json", contract_views.asyncapi_json, name="asyncapi-json"),
    path("api/asyncapi.yaml", contract_views.asyncapi_yaml, name="asyncapi-yaml"),
    re_path(r"^api/asyncapi/?$", contract_views.asyncapi_page, name="asyncapi"),
    path("", include(router.urls)),
]
