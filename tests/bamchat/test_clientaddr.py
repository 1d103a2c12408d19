import pytest
from django.core.exceptions import ImproperlyConfigured

from bamchat.clientaddr import client_address


@pytest.fixture
def proxies(settings):
    def declare(value: str) -> None:
        settings.TRUSTED_PROXIES = [v for v in value.split(",") if v]

    return declare


def test_without_trusted_proxies_the_peer_is_the_client(proxies):
    proxies("")
    assert client_address(peer="198.51.100.7", forwarded_for="1.2.3.4") == (
        "198.51.100.7"
    )
    assert client_address(peer=None, forwarded_for="1.2.3.4") == "unknown"


def test_header_from_an_untrusted_peer_is_ignored(proxies):
    proxies("10.0.0.0/8")
    assert client_address(peer="198.51.100.7", forwarded_for="1.2.3.4") == (
        "198.51.100.7"
    )


@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [
        ("203.0.113.9", "203.0.113.9"),
        # a client-sent entry on the left is never believed over the proxy's own
        ("6.6.6.6, 203.0.113.9", "203.0.113.9"),
        ("6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        ("10.0.0.3, 10.0.0.2", "10.0.0.3"),  # only proxies: the farthest one
        ("garbage, 10.0.0.2", "10.0.0.2"),  # stop at the last vouched address
        ("203.0.113.9:51234", "203.0.113.9"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("", "10.0.0.1"),
    ],
)
def test_header_is_walked_right_to_left_past_trusted_proxies(
    proxies, forwarded_for, expected
):
    proxies("10.0.0.0/8,127.0.0.1")
    assert client_address(peer="10.0.0.1", forwarded_for=forwarded_for) == expected


def test_malformed_setting_says_what_to_do(proxies):
    proxies("10.0.0.0/8,not-an-ip")
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES"):
        client_address(peer="10.0.0.1", forwarded_for="1.2.3.4")
