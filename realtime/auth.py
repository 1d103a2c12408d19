"""Socket.IO handshake authentication with simplejwt access tokens."""

from dataclasses import dataclass
from urllib.parse import parse_qs

from rest_framework_simplejwt.exceptions import (
    AuthenticationFailed,
    ExpiredTokenError,
    TokenError,
)
from rest_framework_simplejwt.tokens import AccessToken

from accounts.tokens import token_users


class AuthRefused(Exception):
    """The handshake carries no usable token; ``code`` goes to the client."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SocketIdentity:
    user_id: int
    username: str
    expires_at: float  # POSIX seconds


def token_from_handshake(environ: dict, auth) -> str | None:
    """The token from ``auth.token``, else the Bearer header, else ``?token=``."""
    if isinstance(auth, dict) and auth.get("token") is not None:
        token = auth["token"]
        if not isinstance(token, str):
            raise AuthRefused("auth_invalid", "auth.token must be a string.")
        return token.removeprefix("Bearer ").strip() or None
    header = environ.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthRefused(
                "auth_invalid", "Authorization header must be 'Bearer <token>'."
            )
        return value.strip()
    values = parse_qs(environ.get("QUERY_STRING", "")).get("token")
    if values and values[0].strip():
        return values[0].strip()
    return None


def access_token_of(token: str | None) -> AccessToken:
    """The validated access token (signature, type, expiry: no database), or
    raise AuthRefused."""
    if not token:
        raise AuthRefused("auth_required", "Authentication required: pass auth.token.")
    try:
        return AccessToken(token)
    except ExpiredTokenError as exc:
        raise AuthRefused(
            "token_expired", "Token expired; log in or refresh and reconnect."
        ) from exc
    except TokenError as exc:
        raise AuthRefused("auth_invalid", "Invalid token.") from exc


def identities_for(accesses: list) -> list:
    """The identity of each validated access token, or the AuthRefused that
    refuses it, with one query for all of them (``accounts.tokens.token_users``)."""
    results = []
    for access, user in zip(accesses, token_users(accesses), strict=True):
        if isinstance(user, AuthenticationFailed):
            refused = AuthRefused("auth_invalid", f"Invalid token: {user.detail}")
            results.append(refused)
        else:
            results.append(
                SocketIdentity(
                    user_id=user.pk,
                    username=user.username,
                    expires_at=float(access["exp"]),
                )
            )
    return results
