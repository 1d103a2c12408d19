"""Firebase Cloud Messaging, HTTP v1: one ``messages:send`` request per device.

google-auth does the OAuth 2 part: it signs the service account's JWT assertion
(RS256, with ``cryptography``), exchanges it at the credentials' ``token_uri``,
keeps the access token until shortly before it expires, and, when FCM answers
401 anyway, fetches a new one and sends again (``AuthorizedSession``).
"""

import functools
import json
import logging
import threading

import requests
from django.conf import settings
from google.auth import exceptions as auth_errors
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import service_account

from push.senders import (
    Notification,
    Outcome,
    Result,
    retry_after_seconds,
    status_outcome,
)

logger = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
ANSWER_MAX_BYTES = 64 * 1024  # an FCM answer is a name or a short error object


class CredentialsProblem(Exception):
    """FCM credentials are missing or unusable; the message says what to fix."""


@functools.cache
def _session(
    credentials_file: str, credentials_json: str, ca_file: str
) -> tuple[AuthorizedSession, str]:
    if credentials_json:
        source, text = "FCM_CREDENTIALS_JSON", credentials_json
    elif credentials_file:
        source = f"FCM_CREDENTIALS_FILE ({credentials_file})"
        try:
            with open(credentials_file, encoding="utf-8") as file:
                text = file.read()
        except OSError as exc:
            raise CredentialsProblem(f"{source} cannot be read: {exc}") from None
    else:
        raise CredentialsProblem(
            "FCM is off: set FCM_CREDENTIALS_FILE to a Firebase service-account key"
        )
    try:
        info = json.loads(text)
        credentials = service_account.Credentials.from_service_account_info(
            info, scopes=[SCOPE]
        )
        project_id = info["project_id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CredentialsProblem(
            f"{source} is not a service-account key with project_id, client_email, "
            f"private_key and token_uri: {exc}"
        ) from None
    transport = requests.Session()
    transport.trust_env = False  # no proxy variables: the token goes to token_uri
    if ca_file:
        transport.verify = ca_file
    session = AuthorizedSession(credentials, auth_request=Request(transport))
    session.trust_env = False
    if ca_file:
        session.verify = ca_file
    return session, project_id


_lock = threading.Lock()


def fcm_session() -> tuple[AuthorizedSession, str]:
    """This process's authorised session and the project id, from the settings."""
    fcm = settings.FCM
    with _lock:
        return _session(
            fcm["CREDENTIALS_FILE"], fcm["CREDENTIALS_JSON"], settings.PUSH["CA_FILE"]
        )


def fcm_message(*, token: str, notification: Notification) -> dict:
    """The ``messages:send`` body for one device."""
    aps: dict = {"thread-id": notification.collapse_id}
    if notification.badge is not None:
        aps["badge"] = notification.badge
    return {
        "message": {
            "token": token,
            "notification": {"title": notification.title, "body": notification.body},
            "data": notification.data,
            "android": {"priority": "high", "collapse_key": notification.collapse_id},
            "apns": {"payload": {"aps": aps}},
        }
    }


def _token_rejected(error: dict) -> bool:
    """Whether an FCM error object says the device token is no longer valid."""
    details = error.get("details") or []
    codes = {d.get("errorCode") for d in details if d.get("@type") == FCM_ERROR_TYPE}
    if "UNREGISTERED" in codes or error.get("status") == "NOT_FOUND":
        return True
    if error.get("status") != "INVALID_ARGUMENT":
        return False
    fields = {
        violation.get("field")
        for d in details
        if d.get("@type") == BAD_REQUEST_TYPE
        for violation in d.get("fieldViolations") or []
    }
    return "message.token" in fields or "registration token" in str(
        error.get("message", "")
    )


def answer_outcome(response: requests.Response) -> Outcome:
    """The outcome of one ``messages:send`` answer."""
    status = response.status_code
    try:
        error = json.loads(response.content[:ANSWER_MAX_BYTES]).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    text = f"{error.get('status', '')} {error.get('message', '')}".strip()
    if 200 <= status < 300:
        return Outcome(Result.SENT, status)
    if _token_rejected(error):
        return Outcome(Result.GONE, status, error=text)
    if status in (401, 403):
        logger.warning(
            "FCM refused the credentials of FCM_CREDENTIALS_FILE (HTTP %s %s): "
            "check the key and that it may send for its project",
            status,
            text,
        )
        return Outcome(Result.FAILED, status, error=text, reason="credentials")
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    return status_outcome(status, retry_after_s=retry_after, error=text)


class FcmSender:
    """FCM HTTP v1 to an Android (or any FCM) device token."""

    platform = "fcm"

    def send(self, *, target, notification: Notification) -> Outcome:
        """Post one message for the device; never raises for a service's answer."""
        try:
            session, project_id = fcm_session()
        except CredentialsProblem as exc:
            logger.warning("FCM push not sent: %s", exc)
            return Outcome(Result.FAILED, error=str(exc), reason="credentials")
        url = f"{settings.FCM['API_URL']}/v1/projects/{project_id}/messages:send"
        try:
            response = session.post(
                url,
                json=fcm_message(token=target.token, notification=notification),
                timeout=settings.PUSH["REQUEST_TIMEOUT_S"],
                allow_redirects=False,
            )
        except auth_errors.RefreshError as exc:
            logger.warning(
                "FCM push not sent: the token endpoint refused the service account "
                "of FCM_CREDENTIALS_FILE (%s)",
                exc,
            )
            return Outcome(Result.FAILED, error=str(exc), reason="credentials")
        except (auth_errors.TransportError, requests.RequestException) as exc:
            return Outcome(Result.RETRY, error=type(exc).__name__)
        return answer_outcome(response)
