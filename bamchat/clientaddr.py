"""The client's address: the TCP peer, or X-Forwarded-For read through trusted proxies.

Every limiter and every recorded connection address takes its address from here.
``X-Forwarded-For`` is believed only when the peer is a proxy the operator
declared in ``TRUSTED_PROXIES``; then the header is walked right to left past the
trusted proxies, and the first address that is not one of them is the client.
"""

import ipaddress
import logging
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = "unknown"


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"TRUSTED_PROXIES has {entry!r}, which is not an IP address or CIDR "
                "range; list the proxies' addresses, e.g. 10.0.0.5,10.1.0.0/16."
            ) from exc
    return tuple(networks)


def trusted_proxy_networks() -> tuple[IPNetwork, ...]:
    """The networks of the proxies declared in settings.TRUSTED_PROXIES."""
    return _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))


def _parse_ip(value: str) -> IPAddress | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:51234"
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _is_trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def client_address(*, peer: str | None, forwarded_for: str | None) -> str:
    """The client's address from the TCP peer and the raw X-Forwarded-For value.

    Without trusted proxies, or when the peer is not one, the peer is the client
    and the header is ignored. Otherwise the header is walked right to left,
    skipping trusted proxies; a malformed entry stops the walk at the last
    address that a trusted proxy vouched for.
    """
    if not peer:
        return UNKNOWN
    networks = trusted_proxy_networks()
    peer_ip = _parse_ip(peer)
    if not networks or not forwarded_for or peer_ip is None:
        return peer
    if not _is_trusted(peer_ip, networks):
        return peer
    address = str(peer_ip)
    for hop in reversed(forwarded_for.split(",")):
        hop_ip = _parse_ip(hop)
        if hop_ip is None:
            break
        address = str(hop_ip)
        if not _is_trusted(hop_ip, networks):
            break
    return address


def request_client_address(request) -> str:
    """The client's address of a Django (or DRF) request."""
    meta = request.META
    return client_address(
        peer=meta.get("REMOTE_ADDR"), forwarded_for=meta.get("HTTP_X_FORWARDED_FOR")
    )
