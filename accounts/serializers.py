from django.contrib.auth import get_user_model, password_validation
from rest_framework import serializers
from rest_framework_simplejwt.serializers import (
    TokenObtainPairSerializer,
    TokenRefreshSerializer,
)
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from accounts.services import user_create
from accounts.tokens import refresh_token_for, user_for_refresh_token

User = get_user_model()


class UserSummarySerializer(serializers.ModelSerializer):
    """The public face of a user inside payloads: id (string) and username."""

    id = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "username"]


class RegisterSerializer(serializers.ModelSerializer):
    id = serializers.CharField(read_only=True)
    password = serializers.CharField(
        write_only=True, trim_whitespace=False, max_length=128
    )
    email = serializers.EmailField(required=False, allow_blank=True)

    class Meta:
        model = User
        fields = ["id", "username", "email", "password", "first_name", "last_name"]

    def validate(self, attrs):
        candidate = User(
            username=attrs.get("username", ""), email=attrs.get("email", "")
        )
        try:
            password_validation.validate_password(attrs["password"], candidate)
        except Exception as exc:  # django.core.exceptions.ValidationError
            raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs

    def create(self, validated_data):
        return user_create(**validated_data)


class MeSerializer(serializers.ModelSerializer):
    id = serializers.CharField(read_only=True)
    email = serializers.CharField(read_only=True)  # may be blank

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "is_staff",
            "date_joined",
        ]
        read_only_fields = fields


class LoginSerializer(TokenObtainPairSerializer):
    """Username and password for a token pair that starts a revocable session."""

    @classmethod
    def get_token(cls, user):
        return refresh_token_for(user)


class RefreshSerializer(TokenRefreshSerializer):
    """A refresh token for a new pair; the old refresh token is blacklisted.

    The token's user must still exist, be active, and not have revoked the
    session (``accounts.tokens``): otherwise 401, never a server error.
    """

    def validate(self, attrs):
        refresh = self.token_class(attrs["refresh"])
        user_for_refresh_token(refresh)
        data = {"access": str(refresh.access_token)}
        if jwt_settings.ROTATE_REFRESH_TOKENS:
            if jwt_settings.BLACKLIST_AFTER_ROTATION:
                refresh.blacklist()
            refresh.set_jti()
            refresh.set_exp()
            refresh.set_iat()
            refresh.outstand()
            data["refresh"] = str(refresh)
        return data


class TokenPairSerializer(serializers.Serializer):
    refresh = serializers.CharField()
    access = serializers.CharField()


class LogoutSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


class PasswordChangeSerializer(serializers.Serializer):
    oldPassword = serializers.CharField(trim_whitespace=False, max_length=128)
    newPassword = serializers.CharField(trim_whitespace=False, max_length=128)
