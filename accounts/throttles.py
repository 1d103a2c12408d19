"""Failed-login limiter: counts failures per username and per client address.

Usernames are counted in their normalised form (``accounts.models.username_key``),
the form login looks them up in, so padding or changing the case of a name does
not open a fresh counter.
"""

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from accounts.models import username_key

logger = logging.getLogger(__name__)


class LoginLocked(Exception):
    """Too many failed logins for this username or address; retry after a while."""

    def __init__(self, retry_after: int):
        super().__init__(f"Too many failed logins; try again in {retry_after} s.")
        self.retry_after = retry_after


@dataclass(frozen=True)
class LoginLimit:
    scope: str
    limit: int
    window_s: int

    def key(self, value: str) -> str:
        # Hashed: usernames may hold characters a cache key must not.
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        return f"login-fail:{self.scope}:{digest}"


def _limits() -> list[LoginLimit]:
    configured = settings.LOGIN_FAILURE_LIMITS
    return [LoginLimit(scope, *configured[scope]) for scope in ("username", "address")]


def _subjects(username: str, address: str) -> list[tuple[LoginLimit, str]]:
    values = {"username": username_key(username or ""), "address": address}
    return [(limit, values[limit.scope]) for limit in _limits()]


def login_retry_after(*, username: str, address: str) -> int | None:
    """Seconds to wait before another attempt is allowed, or None when allowed now."""
    try:
        for limit, value in _subjects(username, address):
            if (cache.get(limit.key(value)) or 0) >= limit.limit:
                return limit.window_s
    except Exception as exc:  # the shared cache is down: do not lock everyone out
        logger.warning("Login limiter cache unreachable (%s); attempt allowed", exc)
    return None


def login_check(*, username: str, address: str) -> None:
    """Raise LoginLocked while the username or the address is locked out."""
    wait = login_retry_after(username=username, address=address)
    if wait is not None:
        raise LoginLocked(wait)


def login_failure_record(*, username: str, address: str) -> None:
    """Count one failed attempt against the username and the address."""
    for limit, value in _subjects(username, address):
        key = limit.key(value)
        try:
            cache.add(key, 0, timeout=limit.window_s)
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=limit.window_s)
        except Exception as exc:
            logger.warning(
                "Login limiter cache unreachable (%s); failure not counted", exc
            )
            return
