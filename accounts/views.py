from rest_framework import generics, permissions
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.serializers import MeSerializer, RegisterSerializer
from accounts.throttles import login_failure_record, login_retry_after
from bamchat.clientaddr import request_client_address


class RegisterView(generics.CreateAPIView):
    """Create an account; anyone may call it."""

    serializer_class = RegisterSerializer
    permission_classes = [permissions.AllowAny]
    authentication_classes = []
    throttle_scope = "register"  # per client address: anonymous callers


class LoginView(TokenObtainPairView):
    """Exchange username and password for a token pair; failures are limited."""

    authentication_classes = []

    def post(self, request, *args, **kwargs):
        username = (
            str(request.data.get("username", ""))[:150]
            if hasattr(request.data, "get")
            else ""
        )
        address = request_client_address(request)
        wait = login_retry_after(username=username, address=address)
        if wait is not None:
            raise Throttled(
                wait=wait, detail="Too many failed logins; try again later."
            )
        try:
            return super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            login_failure_record(username=username, address=address)
            raise


class RefreshView(TokenRefreshView):
    """Exchange a refresh token for a new access token."""

    authentication_classes = []


class MeView(generics.RetrieveAPIView):
    """The caller's own profile and presence."""

    serializer_class = MeSerializer

    def get_object(self):
        return self.request.user
