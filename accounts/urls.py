from django.urls import re_path

from accounts import views

urlpatterns = [
    re_path(r"^register/?$", views.RegisterView.as_view(), name="auth-register"),
    re_path(r"^token/?$", views.LoginView.as_view(), name="auth-token"),
    re_path(
        r"^token/refresh/?$", views.RefreshView.as_view(), name="auth-token-refresh"
    ),
    re_path(r"^logout/?$", views.LogoutView.as_view(), name="auth-logout"),
    re_path(r"^logout-all/?$", views.LogoutAllView.as_view(), name="auth-logout-all"),
    re_path(r"^password/?$", views.PasswordChangeView.as_view(), name="auth-password"),
]
