"""The admin login form, refusing logins while the failed-login limit holds."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from accounts.throttles import LoginLocked


class LimitedAdminAuthenticationForm(AdminAuthenticationForm):
    """Admin login that says so when too many failed logins locked the account."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "locked": (
            "Too many failed logins for this account or address; "
            "try again in %(minutes)d minutes."
        ),
    }

    def clean(self):
        try:
            return super().clean()
        except LoginLocked as exc:
            raise ValidationError(
                self.error_messages["locked"],
                code="locked",
                params={"minutes": max(1, -(-exc.retry_after // 60))},
            ) from exc
