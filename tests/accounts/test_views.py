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


def _login(rest, username, password=PASSWORD):
    return rest.post(
        "/auth/token", {"username": username, "password": password}, format="json"
    )


def test_admin_login_refuses_an_account_locked_at_the_token_endpoint(
    rest, client, settings
):
    settings.LOGIN_FAILURE_LIMITS = {"username": (3, 300), "address": (100, 300)}
    staff = UserFactory(is_staff=True, is_superuser=True)
    for _ in range(3):
        assert _login(rest, staff.username, "wrong").status_code == 401
    assert _login(rest, staff.username).status_code == 429
    resp = client.post(
        "/admin/login/",
        {"username": staff.username, "password": PASSWORD, "next": "/admin/"},
    )
    assert resp.status_code == 200  # the form again, not a redirect into the admin
    assert "Too many failed logins" in resp.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_admin_login_failures_count_against_every_door(rest, client, settings):
    settings.LOGIN_FAILURE_LIMITS = {"username": (3, 300), "address": (100, 300)}
    staff = UserFactory(is_staff=True)
    for _ in range(3):
        resp = client.post(
            "/admin/login/", {"username": staff.username, "password": "wrong"}
        )
        assert resp.status_code == 200
    assert _login(rest, staff.username).status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "variant", [" victim", "victim\t", " victim ", "VICTIM", "\uff56ictim"]
)
def test_username_variants_share_one_failure_counter(rest, settings, variant):
    settings.LOGIN_FAILURE_LIMITS = {"username": (3, 300), "address": (100, 300)}
    UserFactory(username="victim")
    for _ in range(3):
        assert _login(rest, "victim", "wrong").status_code == 401
    assert _login(rest, variant, "wrong").status_code == 429
    assert _login(rest, variant).status_code == 429
    cache.clear()
    for _ in range(3):
        assert _login(rest, variant, "wrong").status_code == 401
    assert _login(rest, "victim").status_code == 429


def test_usernames_are_unique_across_case_and_width(rest):
    first = rest.post(
        "/auth/register", {"username": "nfoo", "password": PASSWORD}, format="json"
    )
    assert first.status_code == 201
    for twin in ["\uff4e\uff46\uff4f\uff4f", "NFOO", "nFoo"]:
        resp = rest.post(
            "/auth/register", {"username": twin, "password": PASSWORD}, format="json"
        )
        assert resp.status_code == 400, (twin, resp.status_code)
        assert "username" in resp.data
    for variant in ["\uff4e\uff46\uff4f\uff4f", "NFOO", " nfoo "]:
        pair = _login(rest, variant)
        assert pair.status_code == 200, variant
        rest.credentials(HTTP_AUTHORIZATION=f"Bearer {pair.data['access']}")
        assert rest.get("/auth/me").data["id"] == first.data["id"]
        rest.credentials()


def test_admin_cannot_create_a_case_twin(client):
    from accounts.models import User

    admin_user = UserFactory(is_staff=True, is_superuser=True)
    UserFactory(username="nfoo")
    client.force_login(admin_user)
    resp = client.post(
        "/admin/accounts/user/add/",
        {
            "username": "\uff4e\uff46\uff4f\uff4f",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "usable_password": "true",
        },
    )
    assert resp.status_code == 200  # the form again, with the error
    assert User.objects.filter(username_key="nfoo").count() == 1
