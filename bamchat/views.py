"""``GET /metrics``: this process's figures in Prometheus's text format.

Staff read it as they read the rest of the API (a session, as the admin uses, or
a Bearer access token); a scraper sends ``Authorization: Bearer <METRICS_TOKEN>``
when that setting is set. Refusals are the API's usual 401/403, without figures.
"""

import hmac

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from accounts.authentication import RevocableJWTAuthentication
from accounts.permissions import IsStaff
from bamchat.metrics import exposition

SCRAPER = "metrics-token"


class MetricsTokenAuthentication(BaseAuthentication):
    """``Bearer <METRICS_TOKEN>``: a scraper, no user. Any other Bearer value is
    left to the JWT authentication that follows."""

    def authenticate(self, request):
        expected = settings.METRICS_TOKEN
        if not expected:
            return None
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != b"bearer":
            return None
        if not hmac.compare_digest(parts[1], expected.encode()):
            return None
        return AnonymousUser(), SCRAPER

    def authenticate_header(self, request) -> str:
        return RevocableJWTAuthentication().authenticate_header(request)


class IsScraper(BasePermission):
    """A request that carried the metrics token."""

    def has_permission(self, request, view) -> bool:
        return request.auth == SCRAPER


class JSONErrors(BaseContentNegotiation):
    """Refusals are JSON whatever a scraper accepts (the figures are not
    rendered by DRF: they pick their own format)."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class MetricsView(APIView):
    """This process's figures (each process serves its own)."""

    authentication_classes = [
        MetricsTokenAuthentication,
        *api_settings.DEFAULT_AUTHENTICATION_CLASSES,
    ]
    permission_classes = [IsScraper | IsStaff]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONErrors

    @extend_schema(exclude=True)
    def get(self, request):
        body, content_type = exposition(request.headers.get("Accept", ""))
        response = HttpResponse(body, content_type=content_type)
        response["Cache-Control"] = "no-store"
        return response
