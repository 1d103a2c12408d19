"""Writes on accounts."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from bamchat.errors import Invalid
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
