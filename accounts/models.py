from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person who takes part in BAMs (custom from the first migration)."""

    class Meta:
        db_table = "accounts_user"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.username
