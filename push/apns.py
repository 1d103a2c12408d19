"""Apple Push Notification service: HTTP/2 with token-based auth.

The provider token is an ES256 JWT (PyJWT, signed by ``cryptography`` with the
``.p8`` key) reused for up to ``PROVIDER_TOKEN_REUSE_S``: Apple refuses one older
than an hour and one renewed more often than every 20 minutes. Requests go over
one long-lived HTTP/2 connection per process (httpx with h2), as Apple asks.
"""

import functools
import json
import logging
import threading
import time

import httpx
import jwt
from django.conf import settings

from push.senders import (
    Notification,
    Outcome,
    Result,
    retry_after_seconds,
    status_outcome,
    tls_context,
)

logger = logging.getLogger(__name__)

PROVIDER_TOKEN_REUSE_S = 50 * 60  # Apple: between 20 and 60 minutes
GONE_REASONS = ("BadDeviceToken", "Unregistered")
CREDENTIAL_REASONS = ("InvalidProviderToken", "MissingProviderToken", "BadTopic")
ANSWER_MAX_BYTES = 64 * 1024  # an APNs answer is an apns-id or a short reason


class CredentialsProblem(Exception):
    """APNs settings are missing or unusable; the message says what to fix."""


class _ProviderToken:
    """The current provider JWT, renewed when older than the reuse limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[tuple, str, float] | None = None

    def get(self) -> str:
        """A provider token for the configured key, team and key id."""
        apns = settings.APNS
        missing = [
            f"APNS_{name}"
            for name in ("KEY_FILE", "KEY_ID", "TEAM_ID", "TOPIC")
            if not apns[name]
        ]
        if missing:
            raise CredentialsProblem(f"APNs is off: {', '.join(missing)} unset")
        identity = (apns["KEY_FILE"], apns["KEY_ID"], apns["TEAM_ID"])
        now = time.time()
        with self._lock:
            cached = self._cached
            if (
                cached
                and cached[0] == identity
                and now - cached[2] < (PROVIDER_TOKEN_REUSE_S)
            ):
                return cached[1]
            token = _sign(*identity, issued_at=int(now))
            self._cached = (identity, token, now)
            return token

    def forget(self) -> None:
        """Drop the token (APNs called it expired): the next send signs anew."""
        with self._lock:
            self._cached = None


def _sign(key_file: str, key_id: str, team_id: str, *, issued_at: int) -> str:
    try:
        with open(key_file, encoding="ascii") as file:
            key = file.read()
    except (OSError, ValueError) as exc:
        raise CredentialsProblem(f"APNS_KEY_FILE cannot be read: {exc}") from None
    try:
        return jwt.encode(
            {"iss": team_id, "iat": issued_at},
            key,
            algorithm="ES256",
            headers={"kid": key_id},
        )
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise CredentialsProblem(
            f"APNS_KEY_FILE is not an ES256 (.p8) private key: {exc}"
        ) from None


provider_token = _ProviderToken()


@functools.cache
def _client(timeout_s: float, ca_file: str) -> httpx.Client:
    # HTTP/2 only: APNs speaks nothing else.
    return httpx.Client(
        http1=False,
        http2=True,
        verify=tls_context(),
        timeout=timeout_s,
        trust_env=False,
        follow_redirects=False,
    )


def apns_client() -> httpx.Client:
    """This process's HTTP/2 client for APNs (one connection, reused)."""
    return _client(settings.PUSH["REQUEST_TIMEOUT_S"], settings.PUSH["CA_FILE"])


def apns_payload(notification: Notification) -> dict:
    """The JSON body of an alert push: ``aps`` and the message's ids."""
    aps: dict = {
        "alert": {"title": notification.title, "body": notification.body},
        "sound": "default",
        "thread-id": notification.collapse_id,
    }
    if notification.badge is not None:
        aps["badge"] = notification.badge
    return {"aps": aps, **notification.data}


def answer_outcome(response: httpx.Response) -> Outcome:
    """The outcome of one APNs answer (its JSON ``reason`` on an error)."""
    status = response.status_code
    if status == 200:
        return Outcome(Result.SENT, status)
    try:
        reason = json.loads(response.content[:ANSWER_MAX_BYTES]).get("reason", "")
    except (ValueError, AttributeError):
        reason = ""
    if status == 410 or reason in GONE_REASONS:
        return Outcome(Result.GONE, status, error=reason)
    if reason == "ExpiredProviderToken":
        provider_token.forget()
        return Outcome(Result.RETRY, status, error=reason)
    if status == 403 or reason in CREDENTIAL_REASONS:
        logger.warning(
            "APNs refused the credentials (HTTP %s %s): check APNS_KEY_FILE, "
            "APNS_KEY_ID, APNS_TEAM_ID and APNS_TOPIC",
            status,
            reason,
        )
        return Outcome(Result.FAILED, status, error=reason, reason="credentials")
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    return status_outcome(status, retry_after_s=retry_after, error=reason)


class ApnsSender:
    """APNs to an iOS device token, as an alert with a badge."""

    platform = "apns"

    def send(self, *, target, notification: Notification) -> Outcome:
        """Post one alert for the device; never raises for a service's answer."""
        try:
            token = provider_token.get()
        except CredentialsProblem as exc:
            logger.warning("APNs push not sent: %s", exc)
            return Outcome(Result.FAILED, error=str(exc), reason="credentials")
        headers = {
            "authorization": f"bearer {token}",
            "apns-topic": settings.APNS["TOPIC"],
            "apns-push-type": "alert",
            "apns-priority": "10",
            "apns-collapse-id": notification.collapse_id,
            "apns-expiration": str(int(time.time()) + settings.PUSH["TTL_S"]),
        }
        url = f"https://{settings.APNS['HOST']}/3/device/{target.token}"
        try:
            response = apns_client().post(
                url, content=json.dumps(apns_payload(notification)), headers=headers
            )
        except httpx.HTTPError as exc:
            return Outcome(Result.RETRY, error=type(exc).__name__)
        return answer_outcome(response)
