"""Who may call an API view: the account checks every app shares."""

from rest_framework.permissions import BasePermission


class IsActiveUser(BasePermission):
    """An authenticated, active account."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active)


class IsStaff(BasePermission):
    """An active staff account."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)
