"""Writes on accounts."""

from django.contrib.auth import get_user_model
from django.db import transaction

User = get_user_model()


@transaction.atomic
def user_create(*, username: str, password: str, email: str = "", **extra) -> User:
    """Create an account with a hashed password."""
    user = User(username=username, email=email, **extra)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user
