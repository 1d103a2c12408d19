from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.forms import (
    LimitedAdminAuthenticationForm,
    RevokingAdminPasswordChangeForm,
)
from accounts.models import User

# The admin's login door follows the same failed-login limit as /auth/token.
admin.site.login_form = LimitedAdminAuthenticationForm


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    change_password_form = RevokingAdminPasswordChangeForm
    list_display = ["id", "username", "email", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_active", "date_joined"]
