from rest_framework import generics, permissions
from rest_framework.exceptions import Throttled
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.serializers import MeSerializer, RegisterSerializer
from accounts.throttles import LoginLocked


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
        try:
            return super().post(request, *args, **kwargs)
        except LoginLocked as exc:
            raise Throttled(
                wait=exc.retry_after, detail="Too many failed logins; try again later."
            ) from exc


class RefreshView(TokenRefreshView):
    """Exchange a refresh token for a new access token."""

    authentication_classes = []


class MeView(generics.RetrieveAPIView):
    """The caller's own profile and presence."""

    serializer_class = MeSerializer

    def get_object(self):
        return self.request.user
