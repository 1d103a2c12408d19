"""REST authentication: simplejwt Bearer tokens, checked by ``accounts.tokens``."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.tokens import user_for_access_token


class RevocableJWTAuthentication(JWTAuthentication):
    """Bearer access tokens that stop working when their session is revoked."""

    def get_user(self, validated_token):
        return user_for_access_token(validated_token)


class RevocableJWTScheme(SimpleJWTScheme):
    """Describes RevocableJWTAuthentication in the OpenAPI schema (as simplejwt's)."""

    target_class = RevocableJWTAuthentication
