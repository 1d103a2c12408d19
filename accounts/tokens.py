"""Whom a JWT speaks for, and whether it still may: the one check every door uses.

REST (``accounts.authentication``), token refresh and the Socket.IO handshake all
load a token's user through here, so a deleted or deactivated account and a
revoked session (``User.tokens_valid_after``) are refused the same way everywhere.
"""

import time
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken

from bamchat.sql import column, db_value, python_value, table

# When the session began (login), in POSIX seconds with sub-second precision. Set on
# the refresh token at login and copied to every access token derived from it;
# ``iat`` alone has whole seconds, too coarse to tell a token issued just before a
# revocation from one issued just after.
AUTH_TIME_CLAIM = "auth_time"


def token_pair_for(user) -> dict[str, str]:
    """A fresh refresh/access pair for the user, stamped with the login time."""
    refresh = refresh_token_for(user)
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


def refresh_token_for(user) -> RefreshToken:
    """A refresh token for the user (listed as outstanding) that starts a session."""
    refresh = RefreshToken.for_user(user)
    refresh[AUTH_TIME_CLAIM] = time.time()
    return refresh


def _session_started_at(token) -> float:
    started = token.get(AUTH_TIME_CLAIM)
    if isinstance(started, int | float) and not isinstance(started, bool):
        return float(started)
    return float(token.get("iat", 0))


def _token_user_id(token):
    user_id = token.get(api_settings.USER_ID_CLAIM)
    if user_id is None:
        raise InvalidToken("Token contained no recognizable user identification.")
    return user_id


def _check_token_user(token, user) -> None:
    """The rule: the user exists, is active, and the token's session began at or
    after ``tokens_valid_after``."""
    if user is None:
        raise AuthenticationFailed("User not found.", code="user_not_found")
    if not user.is_active:
        raise AuthenticationFailed("User is inactive.", code="user_inactive")
    revoked_before = user.tokens_valid_after
    if revoked_before is not None:
        if _session_started_at(token) < revoked_before.timestamp():
            raise AuthenticationFailed(
                "Token has been revoked; log in again.", code="token_revoked"
            )


def _user_for_token(token):
    User = get_user_model()
    try:
        user = User.objects.filter(
            **{api_settings.USER_ID_FIELD: _token_user_id(token)}
        ).first()
    except (TypeError, ValueError):  # a forged id of the wrong type
        user = None
    _check_token_user(token, user)
    return user


@dataclass(frozen=True)
class TokenUser:
    """What the Socket.IO handshake needs of a token's user."""

    pk: int
    username: str
    is_active: bool
    tokens_valid_after: datetime | None


_TOKEN_USER_FIELDS = ("pk", "username", "is_active", "tokens_valid_after")


# Users looked up in one statement at most (one IN list).
TOKEN_USERS_BATCH = 500


def token_user(token) -> TokenUser:
    """``user_for_access_token`` in one SQL statement and without a model
    instance, or AuthenticationFailed."""
    result = token_users([token])[0]
    if isinstance(result, AuthenticationFailed):
        raise result
    return result


def token_users(tokens) -> list:
    """``token_user`` for many tokens in one statement: the handshake checks
    every socket's token, 5,000 at once after a deploy, where a query each (or
    the ORM's query building) costs more than the check. One result per token:
    its TokenUser, or the AuthenticationFailed that refuses it."""
    User = get_user_model()
    fields = [User._meta.pk.name if f == "pk" else f for f in _TOKEN_USER_FIELDS]
    key = api_settings.USER_ID_FIELD
    wanted: list = []
    for token in tokens:
        try:
            wanted.append(db_value(User, key, _token_user_id(token)))
        except InvalidToken as exc:  # no user id claim
            wanted.append(exc)
        except (TypeError, ValueError):  # a forged id of the wrong type
            wanted.append(None)
    ids = sorted({w for w in wanted if w is not None and not isinstance(w, Exception)})
    found: dict = {}
    with connection.cursor() as cursor:
        for start in range(0, len(ids), TOKEN_USERS_BATCH):
            chunk = ids[start : start + TOKEN_USERS_BATCH]
            cursor.execute(
                f"SELECT {column(User, key)}, "
                f"{', '.join(column(User, f) for f in fields)} "
                f"FROM {table(User)} WHERE {column(User, key)} IN "
                f"({', '.join(['%s'] * len(chunk))})",
                chunk,
            )
            for user_id, *row in cursor.fetchall():
                found[user_id] = TokenUser(
                    *(
                        python_value(User, f, v)
                        for f, v in zip(fields, row, strict=True)
                    )
                )
    results: list = []
    for token, user_id in zip(tokens, wanted, strict=True):
        if isinstance(user_id, Exception):
            results.append(user_id)
            continue
        user = found.get(user_id)
        try:
            _check_token_user(token, user)
        except AuthenticationFailed as exc:
            results.append(exc)
        else:
            results.append(user)
    return results


def user_for_access_token(token):
    """The active user of a validated AccessToken, or AuthenticationFailed.

    Refused when the user is gone or inactive, or when the token's session began
    before ``tokens_valid_after`` (logout everywhere, password change).
    """
    return _user_for_token(token)


def user_for_refresh_token(token):
    """The active user of a validated RefreshToken, refused like an access token's."""
    return _user_for_token(token)
