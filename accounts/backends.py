"""The one authentication backend: Django's, behind the failed-login limiter.

Every login door (``/auth/token``, ``/admin/login/``, anything calling
``django.contrib.auth.authenticate``) passes here, so one limit covers them all.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from accounts.throttles import login_check, login_failure_record
from bamchat.clientaddr import UNKNOWN, request_client_address


class LoginLimitedBackend(ModelBackend):
    """ModelBackend that refuses locked-out logins and counts failed ones."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        """The user for these credentials, None on failure; LoginLocked when locked."""
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        username = str(username)
        address = UNKNOWN if request is None else request_client_address(request)
        login_check(username=username, address=address)
        user = super().authenticate(request, username=username, password=password)
        if user is None:
            login_failure_record(username=username, address=address)
        return user
