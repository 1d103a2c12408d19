"""Where a push may be sent: the one rule for subscription endpoints and keys."""

import base64
import binascii
import re
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

DEFAULT_PORTS = {"https": 443, "http": 80}
P256_POINT_BYTES = 65  # an uncompressed P-256 point: 0x04, x, y
AUTH_SECRET_BYTES = 16  # RFC 8291 authentication secret
BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def _origin(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of a URL, or None when it has no usable origin."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host or parts.username or parts.password:
        return None
    return scheme, host, port or DEFAULT_PORTS[scheme]


def endpoint_origin(endpoint: str) -> str:
    """The origin of an endpoint (the VAPID ``aud``), e.g. ``https://fcm.googleapis.com``."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _host_matches(host: str, entry: str) -> bool:
    if entry.startswith("*."):
        return host.endswith(entry[1:]) and len(host) > len(entry) - 1
    return host == entry


def endpoint_allowed(endpoint: str) -> bool:
    """Whether ``PUSH_ALLOWED_HOSTS`` lets the server send to this endpoint.

    A host entry allows https on the default port; an origin entry (``scheme://host
    [:port]``) allows exactly that origin, plain HTTP included.
    """
    origin = _origin(endpoint)
    if origin is None:
        return False
    scheme, host, port = origin
    for raw in settings.PUSH["ALLOWED_HOSTS"]:
        entry = raw.strip().lower().rstrip("/")
        if "://" in entry:
            if _origin(entry) == origin:
                return True
        elif scheme == "https" and port == 443 and _host_matches(host, entry):
            return True
    return False


def b64url_decode(value: str) -> bytes:
    """Decode base64url with or without padding (raises ValueError when malformed)."""
    if not BASE64URL.fullmatch(value):
        raise ValueError("not base64url")
    value = value.rstrip("=")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def b64url_encode(raw: bytes) -> str:
    """Encode base64url without padding, as Web Push keys are written."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def p256dh_valid(value: str) -> bool:
    """Whether a ``keys.p256dh`` is an uncompressed point on P-256, in base64url."""
    try:
        raw = b64url_decode(value)
        if len(raw) != P256_POINT_BYTES or raw[0] != 4:
            return False
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        return False
    return True


def auth_valid(value: str) -> bool:
    """Whether a ``keys.auth`` is a 16-byte secret in base64url."""
    try:
        return len(b64url_decode(value)) == AUTH_SECRET_BYTES
    except ValueError:
        return False
