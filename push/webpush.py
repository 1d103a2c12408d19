"""One Web Push request: RFC 8291 encryption and RFC 8030 delivery by pywebpush,
signed with this server's VAPID key (RFC 8292)."""

import json
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings
from pywebpush import WebPusher

from push.endpoints import Endpoint, allowed_endpoint
from push.vapid import vapid_identity

# A VAPID token lives this long (RFC 8292 allows at most 24 h).
VAPID_TOKEN_S = 12 * 3600


@dataclass(frozen=True)
class PushAnswer:
    """What the push service said: its status (None if unreachable), Retry-After."""

    status: int | None
    retry_after_s: float | None = None
    error: str = ""
    allowed: bool = True  # False: not sent, the endpoint fails PUSH_ALLOWED_HOSTS now


def _session() -> requests.Session:
    """A session that follows no redirect and ignores proxy settings of the
    environment: a push goes to the allowed endpoint and nowhere else."""
    session = requests.Session()
    session.max_redirects = 0
    session.trust_env = False
    return session


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def vapid_headers(endpoint: Endpoint) -> dict[str, str]:
    """``Authorization: vapid t=..., k=...`` for this endpoint's origin."""
    claims = {
        "sub": settings.PUSH["VAPID_SUBJECT"],
        "aud": endpoint.origin,
        "exp": int(time.time()) + VAPID_TOKEN_S,
    }
    return vapid_identity().sign(claims)


def send_push(
    *, endpoint: str, p256dh: str, auth: str, payload: dict, topic: str, ttl_s: int
) -> PushAnswer:
    """Encrypt ``payload`` (JSON) for one subscription and post it to its endpoint,
    if the endpoint passes the rule now (settings may have changed since)."""
    target = allowed_endpoint(endpoint)
    if target is None:
        return PushAnswer(status=None, error="endpoint not allowed", allowed=False)
    headers = {**vapid_headers(target), "Urgency": "high", "Topic": topic}
    subscription = {"endpoint": target.url, "keys": {"p256dh": p256dh, "auth": auth}}
    session = _session()
    try:
        response = WebPusher(subscription, requests_session=session).send(
            data=json.dumps(payload, ensure_ascii=False),
            headers=headers,
            ttl=ttl_s,
            content_encoding="aes128gcm",
            timeout=settings.PUSH["REQUEST_TIMEOUT_S"],
        )
    except requests.TooManyRedirects as exc:
        # A push service does not redirect; following one could reach anywhere.
        status = exc.response.status_code if exc.response is not None else None
        return PushAnswer(status=status or 300, error="redirect refused")
    except requests.RequestException as exc:
        return PushAnswer(status=None, error=type(exc).__name__)
    finally:
        session.close()
    return PushAnswer(
        status=response.status_code,
        retry_after_s=retry_after_seconds(response.headers.get("Retry-After")),
    )
