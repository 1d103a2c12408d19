"""Where a push may be sent: the one rule for subscription endpoints and keys.

An endpoint is read once, strictly (``endpoint_parse``): whatever two URL parsers
could read differently (a backslash, userinfo, percent-encoded or non-ASCII host
bytes, whitespace or control characters, empty labels, a trailing dot, a port out
of range, another spelling of an IPv4 address) is refused. What passes is stored
and sent as the URL rebuilt from the checked parts, so the host checked against
``PUSH_ALLOWED_HOSTS`` is the host connected to.
"""

import base64
import binascii
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

from bamchat.errors import invalid
from push.models import ENDPOINT_MAX_CHARS

DEFAULT_PORTS = {"https": 443, "http": 80}
P256_POINT_BYTES = 65  # an uncompressed P-256 point: 0x04, x, y
AUTH_SECRET_BYTES = 16  # RFC 8291 authentication secret
BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
HOST_MAX_CHARS = 253  # the longest DNS name
# scheme://host[:port][/path[?query]]: no userinfo, no fragment, no IP literal (a
# port's leading zeros are dropped); the path and query are RFC 3986 characters and
# well-formed %XX escapes only.
ENDPOINT_URL = re.compile(
    r"(?P<scheme>[A-Za-z]+)://(?P<host>[A-Za-z0-9.-]+)(?::0*(?P<port>[0-9]{1,5}))?"
    r"(?P<target>/(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?"
)
DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# URL parsers read a host whose last label is a number as an IPv4 address.
NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
IPV4_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")


@dataclass(frozen=True)
class Endpoint:
    """A push endpoint read strictly: the parts checked, and the only URL sent."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, the request line's target

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` (the VAPID ``aud``), the default port left out."""
        port = "" if self.port == DEFAULT_PORTS[self.scheme] else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}"

    @property
    def url(self) -> str:
        """The normalised URL: what is stored and what is sent."""
        return self.origin + self.target


def _host_valid(host: str) -> bool:
    labels = host.split(".")
    if len(host) > HOST_MAX_CHARS or not all(map(DNS_LABEL.fullmatch, labels)):
        return False  # empty labels and a trailing dot fail here
    if NUMERIC_LABEL.fullmatch(labels[-1]):  # an address: dotted decimal only
        return len(labels) == 4 and all(
            IPV4_OCTET.fullmatch(label) and int(label) <= 255 for label in labels
        )
    return True


def endpoint_parse(url) -> Endpoint | None:
    """The parts of an http(s) URL, or None unless every URL parser reads it alike."""
    match = ENDPOINT_URL.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        return None
    scheme, host = match["scheme"].lower(), match["host"].lower()
    if scheme not in DEFAULT_PORTS or not _host_valid(host):
        return None
    port = int(match["port"]) if match["port"] else DEFAULT_PORTS[scheme]
    if not 0 < port < 2**16:
        return None
    return Endpoint(scheme, host, port, match["target"] or "/")


def _host_matches(host: str, entry: str) -> bool:
    if entry.startswith("*."):
        return host.endswith(entry[1:]) and len(host) > len(entry) - 1
    return host == entry


def allowed_endpoint(url) -> Endpoint | None:
    """The endpoint if ``PUSH_ALLOWED_HOSTS`` lets the server send to it, else None.

    A host entry allows https on the default port; an origin entry (``scheme://host
    [:port]``) allows exactly that origin, plain HTTP included.
    """
    endpoint = endpoint_parse(url)
    if endpoint is None:
        return None
    origin = (endpoint.scheme, endpoint.host, endpoint.port)
    for raw in settings.PUSH["ALLOWED_HOSTS"]:
        entry = raw.strip().lower().rstrip("/")
        if "://" in entry:
            allowed = endpoint_parse(entry)
            if allowed and (allowed.scheme, allowed.host, allowed.port) == origin:
                return endpoint
        elif endpoint.scheme == "https" and endpoint.port == 443:
            if _host_matches(endpoint.host, entry):
                return endpoint
    return None


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


def clean_endpoint(endpoint) -> str:
    """The normalised URL of an endpoint this server may send to, or a field error."""
    if not isinstance(endpoint, str) or not endpoint:
        raise invalid("endpoint", "An endpoint URL is required.")
    if len(endpoint) > ENDPOINT_MAX_CHARS:
        raise invalid("endpoint", "Endpoints are URLs of at most 2000 characters.")
    allowed = allowed_endpoint(endpoint)
    if allowed is None:
        raise invalid(
            "endpoint",
            "Push endpoints must be plain https URLs (no userinfo, backslashes, "
            "escapes or spaces in the host) of a push service this server allows "
            "(PUSH_ALLOWED_HOSTS).",
        )
    return allowed.url


def clean_keys(keys) -> tuple[str, str]:
    """``(p256dh, auth)`` from a subscription's ``keys``, or a field error."""
    if not isinstance(keys, dict):
        raise invalid("keys", "keys must be an object with p256dh and auth.")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not isinstance(p256dh, str) or not p256dh_valid(p256dh):
        raise invalid("keys", "keys.p256dh must be a base64url point on P-256.")
    if not isinstance(auth, str) or not auth_valid(auth):
        raise invalid("keys", "keys.auth must be a base64url 16-byte secret.")
    return p256dh, auth


def clean_expiration(value) -> datetime | None:
    """``expirationTime`` (milliseconds since the epoch, or null) as a datetime."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid("expirationTime", "expirationTime must be a number or null.")
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise invalid("expirationTime", "expirationTime is out of range.") from exc


def same_keys(subscription, p256dh: str, auth: str) -> bool:
    """Whether these keys are the subscription's own (compared as bytes)."""
    stored = b64url_decode(subscription.p256dh) + b64url_decode(subscription.auth)
    return hmac.compare_digest(stored, b64url_decode(p256dh) + b64url_decode(auth))
