"""Failed-login limiter: counts failures per username and per client address."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoginLimit:
    scope: str
    limit: int
    window_s: int

    def key(self, value: str) -> str:
        return f"login-fail:{self.scope}:{value.lower()}"


def _limits() -> list[LoginLimit]:
    configured = settings.LOGIN_FAILURE_LIMITS
    return [LoginLimit(scope, *configured[scope]) for scope in ("username", "address")]


def _subjects(username: str, address: str) -> list[tuple[LoginLimit, str]]:
    values = {"username": username or "", "address": address}
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
