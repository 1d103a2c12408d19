"""Admin forms: login under the failed-login limit; password change ends sessions."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.core.exceptions import ValidationError

from accounts.services import user_tokens_revoke
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


class RevokingAdminPasswordChangeForm(AdminPasswordChangeForm):
    """Staff setting a user's password also ends every session of that user."""

    def save(self, commit=True):
        user = super().save(commit=commit)
        if commit:
            user_tokens_revoke(user=user)
        return user
