"""REST throttles that keep the API writable when the shared cache is unreachable."""

import logging

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from bamchat.clientaddr import request_client_address

logger = logging.getLogger(__name__)


class WriteRateThrottle(ScopedRateThrottle):
    """Per-user rate of REST writes (views' ``throttle_scope``); fails open on outage.

    The data lives in the database, so an unreachable Redis must not turn writes
    into errors: the limit is skipped until the cache answers again.
    """

    def get_rate(self):
        # Read the rates now, not at import, so they follow settings changes.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request):
        # Anonymous callers (registration) are counted per client address, read
        # the one way every limiter reads it: DRF's own would believe any
        # X-Forwarded-For a client sends.
        return request_client_address(request)

    def allow_request(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        try:
            return super().allow_request(request, view)
        except Exception as exc:
            logger.warning("Rate-limit cache unreachable (%s); request allowed", exc)
            return True
