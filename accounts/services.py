"""Writes on accounts."""

from django.contrib.auth import authenticate, get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.token_blacklist.models import (
    BlacklistedToken,
    OutstandingToken,
)
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tokens import token_pair_for
from bamchat.errors import Invalid, invalid
from bamchat.text import check_storable_text

User = get_user_model()

USERNAME_TAKEN = "A user with that username already exists."


@transaction.atomic
def user_create(*, username: str, password: str, email: str = "", **extra) -> User:
    """Create an account with a hashed password; a taken username is Invalid.

    Usernames are unique in their normalised form (``accounts.models.username_key``):
    fullwidth ``nf`` or ``NF`` cannot join when ``nf`` exists.
    """
    check_storable_text(username, field="username")
    user = User(username=username, email=email, **extra)
    user.set_password(password)
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        fields = {name: list(messages) for name, messages in exc.message_dict.items()}
        raise Invalid("Invalid account.", fields=fields) from exc
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # registered concurrently under another variant
        raise Invalid(USERNAME_TAKEN, fields={"username": [USERNAME_TAKEN]}) from exc
    return user


@transaction.atomic
def user_tokens_revoke(*, user) -> None:
    """End every session of the user: all refresh tokens and all access tokens.

    Refresh tokens are blacklisted; access tokens are refused by
    ``accounts.tokens.user_for_access_token`` from ``tokens_valid_after`` on, and
    live sockets drop when that field changes.
    """
    now = timezone.now()
    user.tokens_valid_after = now
    user.save(update_fields=["tokens_valid_after"])
    outstanding = OutstandingToken.objects.filter(
        user=user, expires_at__gt=now, blacklistedtoken__isnull=True
    )
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding],
        ignore_conflicts=True,
    )


def session_logout(*, refresh: str) -> None:
    """End one session: its refresh token is blacklisted (invalid token: 401)."""
    try:
        RefreshToken(refresh).blacklist()
    except TokenError as exc:
        raise InvalidToken(str(exc)) from exc


@transaction.atomic
def user_password_change(
    *, user, old_password: str, new_password: str, request=None
) -> dict[str, str]:
    """Change the password, end every session, and return a fresh token pair.

    The old password is checked through ``authenticate`` so a wrong one counts
    against the failed-login limit like any other login (``request`` gives the
    client address); LoginLocked propagates while the limit holds.
    """
    checked = authenticate(request, username=user.get_username(), password=old_password)
    if checked is None or checked.pk != user.pk:
        raise invalid("oldPassword", "The current password is not correct.")
    try:
        password_validation.validate_password(new_password, user)
    except ValidationError as exc:
        raise Invalid(
            "The new password is too weak.", fields={"newPassword": exc.messages}
        ) from exc
    user.set_password(new_password)
    user.save(update_fields=["password"])
    user_tokens_revoke(user=user)
    return token_pair_for(user)
