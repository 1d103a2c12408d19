from rest_framework.permissions import BasePermission


class IsActiveUser(BasePermission):
    """An authenticated, active account."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active)
