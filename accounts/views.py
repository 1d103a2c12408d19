from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.exceptions import Throttled
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts import services
from accounts.serializers import (
    LoginSerializer,
    LogoutSerializer,
    MeSerializer,
    PasswordChangeSerializer,
    RefreshSerializer,
    RegisterSerializer,
    TokenPairSerializer,
)
from accounts.throttles import LoginLocked

LOCKED_DETAIL = "Too many failed logins; try again later."


class RegisterView(generics.CreateAPIView):
    """Create an account; anyone may call it."""

    serializer_class = RegisterSerializer
    permission_classes = [permissions.AllowAny]
    authentication_classes = []
    throttle_scope = "register"  # per client address: anonymous callers


class LoginView(TokenObtainPairView):
    """Exchange username and password for a token pair; failures are limited."""

    serializer_class = LoginSerializer
    authentication_classes = []

    @extend_schema(responses=TokenPairSerializer)
    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except LoginLocked as exc:
            raise Throttled(wait=exc.retry_after, detail=LOCKED_DETAIL) from exc


class RefreshView(TokenRefreshView):
    """Exchange a refresh token for a new pair; the old refresh token stops working."""

    serializer_class = RefreshSerializer
    authentication_classes = []

    @extend_schema(responses=TokenPairSerializer)
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class LogoutView(APIView):
    """End one session: the given refresh token is blacklisted."""

    permission_classes = [permissions.AllowAny]
    authentication_classes = []
    throttle_scope = "rest_write"

    def get_authenticate_header(self, request):
        # The refresh token is the credential: a bad one is a 401, as at refresh.
        return 'Bearer realm="api"'

    @extend_schema(request=LogoutSerializer, responses={204: None})
    def post(self, request):
        body = LogoutSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.session_logout(refresh=body.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """End every session of the caller: all refresh and access tokens stop working."""

    throttle_scope = "rest_write"

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        services.user_tokens_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    """Change the caller's password; every session ends and a new pair is returned."""

    throttle_scope = "rest_write"

    @extend_schema(request=PasswordChangeSerializer, responses=TokenPairSerializer)
    def post(self, request):
        body = PasswordChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            pair = services.user_password_change(
                user=request.user,
                old_password=body.validated_data["oldPassword"],
                new_password=body.validated_data["newPassword"],
                request=request,
            )
        except LoginLocked as exc:
            raise Throttled(wait=exc.retry_after, detail=LOCKED_DETAIL) from exc
        return Response(pair)


class MeView(generics.RetrieveAPIView):
    """The caller's own profile and presence."""

    serializer_class = MeSerializer

    def get_object(self):
        return self.request.user
