from django.contrib.auth import get_user_model, password_validation
from rest_framework import serializers

from accounts.services import user_create

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
