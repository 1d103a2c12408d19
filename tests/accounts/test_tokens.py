"""Sessions end when asked: logout, logout everywhere, password change, deletion."""

import time

import pytest
from django.core.cache import cache
from django.db import connection
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.tokens import AccessToken

from accounts import services
from accounts.models import User
from accounts.tokens import (
    AUTH_TIME_CLAIM,
    token_user,
    token_users,
    user_for_access_token,
)
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-staple-battery-77"


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def login(rest, user, password=PASSWORD) -> dict:
    resp = rest.post(
        "/auth/token", {"username": user.username, "password": password}, format="json"
    )
    assert resp.status_code == 200, resp.data
    return resp.data


def me_status(rest, access) -> int:
    rest.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    code = rest.get("/auth/me").status_code
    rest.credentials()
    return code


def refresh_status(rest, refresh) -> int:
    return rest.post(
        "/auth/token/refresh", {"refresh": refresh}, format="json"
    ).status_code


def test_refreshing_a_deleted_users_token_is_401(rest):
    user = UserFactory()
    pair = login(rest, user)
    user.delete()
    assert refresh_status(rest, pair["refresh"]) == 401
    assert me_status(rest, pair["access"]) == 401


def test_refresh_rotates_and_the_old_refresh_token_stops_working(rest):
    user = UserFactory()
    pair = login(rest, user)
    resp = rest.post(
        "/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json"
    )
    assert resp.status_code == 200 and resp.data["refresh"] != pair["refresh"]
    assert refresh_status(rest, pair["refresh"]) == 401
    assert refresh_status(rest, resp.data["refresh"]) == 200


@pytest.mark.parametrize("path", ["/auth/logout", "/auth/logout/"])
def test_logout_blacklists_the_refresh_token(rest, path):
    user = UserFactory()
    pair, other = login(rest, user), login(rest, user)
    resp = rest.post(path, {"refresh": pair["refresh"]}, format="json")
    assert resp.status_code == 204
    assert refresh_status(rest, pair["refresh"]) == 401
    assert refresh_status(rest, other["refresh"]) == 200  # other sessions live on
    garbage = rest.post(path, {"refresh": "not-a-token"}, format="json")
    assert garbage.status_code == 401


@pytest.mark.parametrize("path", ["/auth/logout-all", "/auth/logout-all/"])
def test_logout_everywhere_ends_every_session_at_once(rest, path):
    user = UserFactory()
    first, second = login(rest, user), login(rest, user)
    bystander = UserFactory()
    theirs = login(rest, bystander)
    rest.credentials(HTTP_AUTHORIZATION=f"Bearer {first['access']}")
    assert rest.post(path).status_code == 204
    rest.credentials()
    for pair in (first, second):
        assert me_status(rest, pair["access"]) == 401
        assert refresh_status(rest, pair["refresh"]) == 401
    assert me_status(rest, theirs["access"]) == 200
    fresh = login(rest, user)  # a new session right away is fine
    assert me_status(rest, fresh["access"]) == 200
    assert refresh_status(rest, fresh["refresh"]) == 200
    assert rest.post(path).status_code == 401  # anonymous


@pytest.mark.parametrize("path", ["/auth/password", "/auth/password/"])
def test_password_change_ends_other_sessions_and_returns_a_new_pair(rest, path):
    user = UserFactory()
    old = login(rest, user)
    rest.credentials(HTTP_AUTHORIZATION=f"Bearer {old['access']}")
    wrong = rest.post(
        path, {"oldPassword": "nope", "newPassword": NEW_PASSWORD}, format="json"
    )
    assert wrong.status_code == 400 and "oldPassword" in wrong.data
    weak = rest.post(
        path, {"oldPassword": PASSWORD, "newPassword": "123"}, format="json"
    )
    assert weak.status_code == 400 and "newPassword" in weak.data
    assert me_status(rest, old["access"]) == 200  # refused changes revoke nothing
    rest.credentials(HTTP_AUTHORIZATION=f"Bearer {old['access']}")
    done = rest.post(
        path, {"oldPassword": PASSWORD, "newPassword": NEW_PASSWORD}, format="json"
    )
    rest.credentials()
    assert done.status_code == 200, done.data
    assert me_status(rest, old["access"]) == 401
    assert refresh_status(rest, old["refresh"]) == 401
    assert me_status(rest, done.data["access"]) == 200
    assert refresh_status(rest, done.data["refresh"]) == 200
    bad = rest.post(
        "/auth/token", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert bad.status_code == 401
    login(rest, user, NEW_PASSWORD)


def test_wrong_current_passwords_count_as_failed_logins(rest, settings):
    settings.LOGIN_FAILURE_LIMITS = {"username": (3, 300), "address": (100, 300)}
    user = UserFactory()
    pair = login(rest, user)
    rest.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    body = {"oldPassword": "guess", "newPassword": NEW_PASSWORD}
    codes = [
        rest.post("/auth/password", body, format="json").status_code for _ in "123"
    ]
    assert codes == [400, 400, 400]
    body["oldPassword"] = PASSWORD
    assert rest.post("/auth/password", body, format="json").status_code == 429


def test_deactivation_refuses_access_tokens(rest):
    user = UserFactory()
    pair = login(rest, user)
    user.is_active = False
    user.save()
    assert me_status(rest, pair["access"]) == 401
    assert refresh_status(rest, pair["refresh"]) == 401


def test_revocation_saves_only_tokens_valid_after():
    user = UserFactory()
    seen = []

    def record(sender, instance, update_fields=None, **kwargs):
        seen.append(update_fields)

    post_save.connect(record, sender=User, dispatch_uid="test-revoke")
    try:
        services.user_tokens_revoke(user=user)
    finally:
        post_save.disconnect(dispatch_uid="test-revoke", sender=User)
    assert seen == [frozenset({"tokens_valid_after"})]


@pytest.mark.parametrize("check", [user_for_access_token, token_user])
def test_token_checks_refuse_revoked_gone_and_inactive_users(check):
    """The REST check (ORM) and the handshake's (one SQL statement) agree."""
    user = UserFactory()
    token = AccessToken.for_user(user)  # no auth_time claim: iat decides
    allowed = check(token)
    assert (allowed.pk, allowed.username) == (user.pk, user.username)
    services.user_tokens_revoke(user=user)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        check(token)
    later = AccessToken.for_user(user)
    later[AUTH_TIME_CLAIM] = time.time() + 1
    assert check(later).pk == user.pk
    other = UserFactory(is_active=False)
    with pytest.raises(AuthenticationFailed, match="inactive"):
        check(AccessToken.for_user(other))
    gone = AccessToken.for_user(UserFactory())
    User.objects.filter(pk=gone["user_id"]).delete()
    with pytest.raises(AuthenticationFailed, match="not found"):
        check(gone)
    forged = AccessToken.for_user(user)
    forged["user_id"] = "not-a-number"
    with pytest.raises(AuthenticationFailed, match="not found"):
        check(forged)


def test_password_set_in_the_admin_ends_the_users_sessions(rest, client):
    user = UserFactory()
    pair = login(rest, user)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    resp = client.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert resp.status_code == 302, resp.content.decode()[:500]
    assert me_status(rest, pair["access"]) == 401
    assert refresh_status(rest, pair["refresh"]) == 401
    login(rest, user, NEW_PASSWORD)


def test_token_users_checks_many_tokens_in_one_statement_as_one_would():
    """A storm's handshakes: each token gets what ``token_user`` alone gives."""
    fine, revoked, inactive = UserFactory(), UserFactory(), UserFactory()
    tokens = [AccessToken.for_user(u) for u in (fine, revoked, inactive)]
    services.user_tokens_revoke(user=revoked)
    User.objects.filter(pk=inactive.pk).update(is_active=False)
    gone = AccessToken.for_user(UserFactory())
    User.objects.filter(pk=gone["user_id"]).delete()
    forged = AccessToken.for_user(fine)
    forged["user_id"] = "not-a-number"
    nameless = AccessToken.for_user(fine)
    del nameless["user_id"]
    tokens += [gone, forged, nameless, AccessToken.for_user(fine)]
    with CaptureQueriesContext(connection) as queries:
        results = token_users(tokens)
    assert len(queries) == 1
    for token, result in zip(tokens, results, strict=True):
        try:
            alone = token_user(token)
        except AuthenticationFailed as exc:
            assert isinstance(result, AuthenticationFailed), (token.payload, result)
            assert str(result.detail) == str(exc.detail)
        else:
            assert result == alone
    assert [r.pk for r in results if not isinstance(r, Exception)] == [fine.pk] * 2
