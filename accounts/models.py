import unicodedata

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.core.exceptions import ValidationError
from django.db import models

# casefold() may lengthen a name ("ß" becomes "ss"): room for the longest result.
USERNAME_KEY_MAX_CHARS = 600


def username_key(username: str) -> str:
    """The form in which usernames are unique and looked up: trimmed, NFKC, folded.

    Fullwidth ``victim``, ``VICTIM`` and `` victim `` all name ``victim``; login,
    registration and the failed-login limiter all go through this function.
    """
    folded = unicodedata.normalize("NFKC", str(username)).strip().casefold()
    return unicodedata.normalize("NFKC", folded)


class UserManager(DjangoUserManager):
    """Finds accounts by their normalised username, so every variant logs in alike."""

    def get_by_natural_key(self, username):
        return self.get(username_key=username_key(username))


class User(AbstractUser):
    """A person who takes part in BAMs (custom from the first migration)."""

    # The unique form of ``username`` (username_key()); kept in step by save().
    username_key = models.CharField(
        max_length=USERNAME_KEY_MAX_CHARS, unique=True, editable=False
    )
    # Access tokens issued before this instant are refused (accounts.tokens);
    # set by accounts.services.user_tokens_revoke.
    tokens_valid_after = models.DateTimeField(null=True, blank=True, editable=False)

    objects = UserManager()

    class Meta:
        db_table = "accounts_user"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.username

    def clean(self) -> None:
        super().clean()
        self.username_key = username_key(self.username)
        clash = type(self)._default_manager.filter(username_key=self.username_key)
        if clash.exclude(pk=self.pk).exists():
            raise ValidationError(
                {"username": "A user with that username already exists."}
            )

    def validate_unique(self, exclude=None) -> None:
        # clean() reports a username_key clash on the field people see, username.
        super().validate_unique(exclude={*(exclude or ()), "username_key"})

    def save(self, *args, **kwargs) -> None:
        self.username_key = username_key(self.username)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "username" in update_fields:
            kwargs["update_fields"] = {*update_fields, "username_key"}
        super().save(*args, **kwargs)
