import pytest
from django.core.cache import cache

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def test_register_creates_account_and_hides_password(rest):
    resp = rest.post(
        "/auth/register", {"username": "ann", "password": PASSWORD}, format="json"
    )
    assert resp.status_code == 201, resp.data
    assert resp.data["username"] == "ann"
    assert isinstance(resp.data["id"], str)
    assert "password" not in resp.data


@pytest.mark.parametrize("path", ["/auth/register", "/auth/register/"])
def test_register_rejects_weak_password_and_duplicate(rest, path):
    weak = rest.post(path, {"username": "bob", "password": "123"}, format="json")
    assert weak.status_code == 400 and "password" in weak.data
    UserFactory(username="taken")
    dup = rest.post(path, {"username": "taken", "password": PASSWORD}, format="json")
    assert dup.status_code == 400 and "username" in dup.data


def test_token_refresh_and_me(rest):
    user = UserFactory()
    pair = rest.post(
        "/auth/token", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert pair.status_code == 200
    refreshed = rest.post(
        "/auth/token/refresh/", {"refresh": pair.data["refresh"]}, format="json"
    )
    assert refreshed.status_code == 200 and "access" in refreshed.data
    rest.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed.data['access']}")
    me = rest.get("/auth/me")
    assert me.status_code == 200
    assert me.data["id"] == str(user.pk)
    assert me.data["presence"] == {
        "status": "offline",
        "online": False,
        "lastSeen": None,
    }


def test_me_requires_credentials_with_bearer_challenge(rest):
    resp = rest.get("/auth/me/")
    assert resp.status_code == 401
    assert resp["WWW-Authenticate"].startswith("Bearer")


def test_refresh_token_is_not_an_access_token(rest):
    user = UserFactory()
    pair = rest.post(
        "/auth/token", {"username": user.username, "password": PASSWORD}, format="json"
    )
    rest.credentials(HTTP_AUTHORIZATION=f"Bearer {pair.data['refresh']}")
    assert rest.get("/auth/me").status_code == 401


def test_failed_logins_are_limited_per_username_but_successes_are_not_counted(
    rest, settings
):
    settings.LOGIN_FAILURE_LIMITS = {"username": (3, 300), "address": (100, 300)}
    user = UserFactory()
    for _ in range(5):  # successful logins never count against the limit
        ok = rest.post(
            "/auth/token",
            {"username": user.username, "password": PASSWORD},
            format="json",
        )
        assert ok.status_code == 200
    for _ in range(3):
        bad = rest.post(
            "/auth/token",
            {"username": user.username, "password": "wrong"},
            format="json",
        )
        assert bad.status_code == 401
    blocked = rest.post(
        "/auth/token", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0
    other = UserFactory()
    fine = rest.post(
        "/auth/token", {"username": other.username, "password": PASSWORD}, format="json"
    )
    assert fine.status_code == 200


def test_failed_logins_are_limited_per_address(rest, settings):
    settings.LOGIN_FAILURE_LIMITS = {"username": (100, 300), "address": (4, 300)}
    for i in range(4):
        rest.post(
            "/auth/token", {"username": f"ghost{i}", "password": "x"}, format="json"
        )
    user = UserFactory()
    resp = rest.post(
        "/auth/token", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert resp.status_code == 429


def _throttle_rates(settings, **rates):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            **rates,
        },
    }


def test_register_limit_ignores_forwarded_for_from_untrusted_peers(rest, settings):
    _throttle_rates(settings, register="3/min")
    settings.TRUSTED_PROXIES = []
    codes = [
        rest.post(
            "/auth/register",
            {"username": f"spoof{i}", "password": PASSWORD},
            format="json",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{i}",
        ).status_code
        for i in range(4)
    ]
    assert codes == [201, 201, 201, 429]


def test_register_limit_counts_clients_behind_a_trusted_proxy(rest, settings):
    _throttle_rates(settings, register="3/min")
    settings.TRUSTED_PROXIES = ["127.0.0.1"]  # the test client's REMOTE_ADDR
    codes = [
        rest.post(
            "/auth/register",
            {"username": f"proxied{i}", "password": PASSWORD},
            format="json",
            HTTP_X_FORWARDED_FOR=f"6.6.6.6, 203.0.113.{i % 2}",
        ).status_code
        for i in range(6)
    ]
    assert codes == [201, 201, 201, 201, 201, 201]
    blocked = rest.post(
        "/auth/register",
        {"username": "proxied-more", "password": PASSWORD},
        format="json",
        HTTP_X_FORWARDED_FOR="203.0.113.0",
    )
    assert blocked.status_code == 429


def test_login_address_limit_follows_the_client_behind_a_trusted_proxy(rest, settings):
    settings.LOGIN_FAILURE_LIMITS = {"username": (100, 300), "address": (3, 300)}
    settings.TRUSTED_PROXIES = ["127.0.0.0/8"]
    for i in range(3):
        rest.post(
            "/auth/token",
            {"username": f"ghost{i}", "password": "x"},
            format="json",
            HTTP_X_FORWARDED_FOR="203.0.113.66",
        )
    user = UserFactory()
    body = {"username": user.username, "password": PASSWORD}
    locked = rest.post(
        "/auth/token", body, format="json", HTTP_X_FORWARDED_FOR="203.0.113.66"
    )
    assert locked.status_code == 429
    other = rest.post(
        "/auth/token", body, format="json", HTTP_X_FORWARDED_FOR="203.0.113.67"
    )
    assert other.status_code == 200
