"""The endpoint rule: allowed hosts, hostile spellings refused, one normalised URL.

A spelling is hostile when the rule and the HTTP client could read a different
host in it (e.g. urllib3 ends the host at a backslash that urlsplit keeps).
"""

import pytest

from push.endpoints import allowed_endpoint


@pytest.mark.parametrize(
    "endpoint, allowed",
    [
        ("https://fcm.googleapis.com/fcm/send/x", True),
        ("https://FCM.googleapis.com:443/fcm/send/x", True),
        ("https://wns2-par02p.notify.windows.com/w/?token=x", True),
        ("https://notify.windows.com/w", False),
        ("https://evilnotify.windows.com/w", False),
        ("http://fcm.googleapis.com/fcm/send/x", False),
        ("https://fcm.googleapis.com:444/fcm/send/x", False),
        ("https://fcm.googleapis.com.evil.com/x", False),
        ("https://u:p@fcm.googleapis.com/x", False),
        ("http://127.0.0.1:9123/push/x", True),
        ("http://127.0.0.1:9124/push/x", False),
        ("https://127.0.0.1:9123/push/x", False),
        ("http://localhost:9123/push/x", False),
        ("http://127.0.0.1:99999/x", False),
        ("javascript:alert(1)", False),
    ],
)
def test_endpoint_rule(push_hosts, endpoint, allowed):
    assert (allowed_endpoint(endpoint) is not None) is allowed


HOSTILE = [
    # Backslashes: urllib3 ends the host there, urlsplit and WHATWG do not.
    "https://127.0.0.1\\.notify.windows.com/x",
    "https://127.0.0.1:443\\.notify.windows.com/x",
    "https://fcm.googleapis.com\\@127.0.0.1/x",
    "http://127.0.0.1:9123\\@fcm.googleapis.com/x",
    "https:\\\\fcm.googleapis.com/x",
    "https://fcm.googleapis.com/fcm\\send/x",
    # Userinfo.
    "https://fcm.googleapis.com@127.0.0.1/x",
    "https://user@fcm.googleapis.com/x",
    "https://@fcm.googleapis.com/x",
    "https://:@fcm.googleapis.com/x",
    "https://evil.example#@fcm.googleapis.com/x",
    # Percent-encoded or non-ASCII host bytes.
    "https://127.0.0.1%5C.notify.windows.com/x",
    "https://127.0.0.1%2F.notify.windows.com/x",
    "https://fcm%2Egoogleapis.com/x",
    "https://%66cm.googleapis.com/x",
    "https://\uff46cm.googleapis.com/x",  # fullwidth f
    "https://x\u3002notify.windows.com/x",  # ideographic full stop
    "https://fcm.googleapis.com/x\u00e9",
    # Whitespace and control characters (urlsplit drops tabs and newlines).
    "https://127.0.0.1\t.notify.windows.com/x",
    "https://127.0.0.1\n.notify.windows.com/x",
    "https://127.0.0.1 .notify.windows.com/x",
    " https://fcm.googleapis.com/x",
    "https://fcm.googleapis.com/x\r\nX-Injected: 1",
    "https://fcm.googleapis.com\x00.evil.example/x",
    # Empty labels, trailing dots, labels DNS does not have.
    "https://a..notify.windows.com/x",
    "https://..notify.windows.com/x",
    "https://.fcm.googleapis.com/x",
    "https://fcm.googleapis.com./x",
    "https://x.notify.windows.com./x",
    "https://a_b.notify.windows.com/x",
    "https://-x.notify.windows.com/x",
    # Ports out of range or oddly written.
    "https://fcm.googleapis.com:/x",
    "https://fcm.googleapis.com:0/x",
    "https://fcm.googleapis.com:65536/x",
    "https://fcm.googleapis.com:99999999999/x",
    "https://fcm.googleapis.com:-1/x",
    "https://fcm.googleapis.com:+443/x",
    "https://fcm.googleapis.com:443:443/x",
    # Other spellings of an address, IP literals, odd schemes, broken escapes.
    "http://127.1:9123/x",
    "http://2130706433:9123/x",
    "http://0x7f.0.0.1:9123/x",
    "http://127.0.0.01:9123/x",
    "https://[::1]/x",
    "https://[fcm.googleapis.com]/x",
    "https:/fcm.googleapis.com/x",
    "https:///fcm.googleapis.com/x",
    "https://fcm.googleapis.com/x?y=%zz",
    "https://fcm.googleapis.com/x#fragment",
]


@pytest.mark.parametrize("endpoint", HOSTILE)
def test_hostile_spellings_are_refused(push_hosts, endpoint):
    assert allowed_endpoint(endpoint) is None


@pytest.mark.parametrize(
    "endpoint, normalised",
    [
        (
            "HTTPS://FCM.GoogleAPIs.com:443/fcm/send/abc:APA91b?x=1",
            "https://fcm.googleapis.com/fcm/send/abc:APA91b?x=1",
        ),
        (
            "https://fcm.googleapis.com:0443/fcm/send/a",
            "https://fcm.googleapis.com/fcm/send/a",
        ),
        ("https://fcm.googleapis.com", "https://fcm.googleapis.com/"),
        ("HTTP://127.0.0.1:9123/push/x", "http://127.0.0.1:9123/push/x"),
        (
            "https://wns2-par02p.notify.windows.com/w/?token=a%2Bb%3D",
            "https://wns2-par02p.notify.windows.com/w/?token=a%2Bb%3D",
        ),
    ],
)
def test_an_allowed_endpoint_is_rebuilt_from_its_checked_parts(
    push_hosts, endpoint, normalised
):
    assert allowed_endpoint(endpoint).url == normalised
    assert allowed_endpoint(normalised).url == normalised
