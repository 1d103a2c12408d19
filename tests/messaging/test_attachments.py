"""Attachments end to end: real multipart uploads to a live daphne server, signed
downloads, and messages that carry attachments over REST and Socket.IO."""

import io
import os
import time

import aiohttp
import pytest
from django.core import signing
from PIL import Image

from messaging.attachments import SIGNING_SALT
from tests.messaging.attachment_files import (
    GPS_IFD,
    HTML,
    PDF,
    download,
    jpeg_with_gps,
    png,
    png_bomb,
    upload,
)

pytestmark = pytest.mark.live


async def pair(api):
    """Alice (owner) and Bob in one BAM."""
    alice, bob = await api.account("alice"), await api.account("bob")
    return alice, bob, await api.bam(alice, bob)


async def test_png_is_an_image_with_a_thumbnail_served_inline(api):
    alice, _, bam = await pair(api)
    status, att = await upload(
        api, alice, bam["id"], png(800, 600), "cat.png", "image/png"
    )
    assert status == 201, att
    assert set(att) == {
        "id", "bamId", "name", "size", "contentType", "kind",
        "width", "height", "url", "thumbnailUrl",
    }  # fmt: skip
    assert (att["kind"], att["contentType"], att["name"]) == (
        "image",
        "image/png",
        "cat.png",
    )
    assert (att["width"], att["height"], att["bamId"]) == (800, 600, bam["id"])

    got = await download(api, att["url"])  # no header: works in <img src>
    assert got.status == 200
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Disposition"].startswith("inline")
    assert len(got.body) == att["size"]
    assert Image.open(io.BytesIO(got.body)).size == (800, 600)

    thumb = await download(api, att["thumbnailUrl"])
    assert thumb.status == 200, thumb.body[:200]
    assert thumb.headers["X-Content-Type-Options"] == "nosniff"
    assert Image.open(io.BytesIO(thumb.body)).size == (320, 240)


async def test_jpeg_comes_back_without_its_gps_exif(api):
    alice, _, bam = await pair(api)
    original = jpeg_with_gps(1024, 768)
    assert GPS_IFD in Image.open(io.BytesIO(original)).getexif()  # the premise
    status, att = await upload(
        api, alice, bam["id"], original, "trip.jpg", "image/jpeg"
    )
    assert status == 201, att
    assert (att["kind"], att["contentType"]) == ("image", "image/jpeg")

    for url, size in ((att["url"], (1024, 768)), (att["thumbnailUrl"], (320, 240))):
        got = await download(api, url)
        assert got.status == 200
        image = Image.open(io.BytesIO(got.body))
        assert image.size == size
        assert not image.getexif(), dict(image.getexif())
        assert b"Exif" not in got.body and b"BAM Camera" not in got.body


async def test_pdf_is_a_file_downloaded_as_attachment(api):
    alice, _, bam = await pair(api)
    status, att = await upload(
        api, alice, bam["id"], PDF, "report.pdf", "application/pdf"
    )
    assert status == 201, att
    assert att["kind"] == "file" and att["contentType"] == "application/pdf"
    assert (
        att["width"] is None and att["height"] is None and att["thumbnailUrl"] is None
    )
    assert att["size"] == len(PDF)
    got = await download(api, att["url"])
    assert got.status == 200 and got.body == PDF
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert 'filename="report.pdf"' in got.headers["Content-Disposition"]
    assert got.headers["X-Content-Type-Options"] == "nosniff"


async def test_html_claiming_to_be_png_is_never_served_inline(api):
    alice, _, bam = await pair(api)
    status, att = await upload(api, alice, bam["id"], HTML, "cute.png", "image/png")
    assert status == 201, att
    assert att["kind"] == "file" and att["contentType"] == "application/octet-stream"
    assert att["thumbnailUrl"] is None
    got = await download(api, att["url"])
    assert got.status == 200 and got.body == HTML
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert got.headers["X-Content-Type-Options"] == "nosniff"


async def test_svg_is_a_file(api):
    alice, _, bam = await pair(api)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    status, att = await upload(api, alice, bam["id"], svg, "logo.svg", "image/svg+xml")
    assert status == 201 and att["kind"] == "file", att
    got = await download(api, att["url"])
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Content-Disposition"].startswith("attachment")


async def test_truncated_image_is_a_file(api):
    alice, _, bam = await pair(api)
    data = png(400, 300)
    truncated = data[: len(data) // 2]
    status, att = await upload(
        api, alice, bam["id"], truncated, "half.png", "image/png"
    )
    assert status == 201, att
    assert att["kind"] == "file" and att["thumbnailUrl"] is None
    assert att["size"] == len(truncated)


async def test_decompression_bomb_is_refused(api):
    alice, _, bam = await pair(api)
    status, body = await upload(
        api, alice, bam["id"], png_bomb(), "bomb.png", "image/png"
    )
    assert status == 400, body
    assert "file" in body


async def test_upload_without_a_file_is_invalid(api):
    alice, _, bam = await pair(api)
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("other", "1")
    path = f"/bams/{bam['id']}/attachments"
    status, body = await api.request("POST", path, token=alice.access, data=form)
    assert status == 400 and "file" in body, body
    status, _ = await api.request("POST", path, token=alice.access, json={"x": 1})
    assert status == 415


async def test_outsiders_get_404_and_participants_use_their_token(api):
    alice, _, bam = await pair(api)
    outsider = await api.account("eve")
    status, _ = await upload(api, outsider, bam["id"], PDF, "x.pdf", "application/pdf")
    assert status == 404
    _, att = await upload(api, alice, bam["id"], PDF, "x.pdf", "application/pdf")
    bare = f"/attachments/{att['id']}"

    assert (await download(api, bare)).status == 404
    assert (await download(api, bare, token=outsider.access)).status == 404
    assert (await download(api, bare + "?sig=forged:abc")).status == 404
    assert (await download(api, bare, token=alice.access)).status == 200
    # A valid signature is for one attachment and one variant only.
    sig = att["url"].split("sig=", 1)[1]
    assert (await download(api, f"{bare}/thumbnail?sig={sig}")).status == 404
    assert (
        await download(api, f"/attachments/{int(att['id']) + 10_000}?sig={sig}")
    ).status == 404


async def test_an_upload_not_yet_in_a_message_is_the_uploaders_alone(api):
    alice, bob, bam = await pair(api)
    _, att = await upload(api, alice, bam["id"], png(64, 48), "a.png", "image/png")
    bare = [f"/attachments/{att['id']}", f"/attachments/{att['id']}/thumbnail"]
    missing = await download(api, f"/attachments/{int(att['id']) + 10_000}")
    for path in bare:
        hidden = await download(api, path, token=bob.access)
        # Exactly what an id that does not exist answers: nothing leaks.
        assert (hidden.status, hidden.body) == (404, missing.body), path
        assert (await download(api, path, token=alice.access)).status == 200, path
    await api.post_message(alice, bam["id"], "", attachmentIds=[att["id"]])
    for path in bare:
        for who in (alice, bob):
            assert (await download(api, path, token=who.access)).status == 200


def _signature(attachment_id: str, variant: str, *, age_s: int) -> str:
    """What the server signs, made here with the run's key as of ``age_s`` ago."""

    class Backdated(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - age_s)

    signer = Backdated(key=os.environ["DJANGO_SECRET_KEY"], salt=SIGNING_SALT)
    return signer.sign(f"{attachment_id}.{variant}").split(":", 1)[1]


async def test_expired_signed_url_is_404(api):
    alice, _, bam = await pair(api)
    _, att = await upload(api, alice, bam["id"], png(64, 64), "a.png", "image/png")
    base = f"/attachments/{att['id']}?sig="
    fresh = _signature(att["id"], "o", age_s=0)
    assert (await download(api, base + fresh)).status == 200  # the forge is right
    expired = _signature(att["id"], "o", age_s=3600 + 60)
    got = await download(api, base + expired)
    assert got.status == 404, got.body[:200]


async def test_range_and_etag(api):
    alice, _, bam = await pair(api)
    data = PDF + os.urandom(200_000)
    _, att = await upload(api, alice, bam["id"], data, "big.pdf", "application/pdf")
    whole = await download(api, att["url"])
    assert whole.status == 200 and whole.body == data
    assert whole.headers["Accept-Ranges"] == "bytes"
    etag = whole.headers["ETag"]

    part = await download(api, att["url"], Range="bytes=1000-1999")
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert part.body == data[1000:2000]
    assert part.headers["X-Content-Type-Options"] == "nosniff"

    tail = await download(api, att["url"], Range="bytes=-100")
    assert tail.status == 206 and tail.body == data[-100:]
    beyond = await download(api, att["url"], Range=f"bytes={len(data)}-")
    assert beyond.status == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(data)}"

    cached = await download(api, att["url"], **{"If-None-Match": etag})
    assert cached.status == 304 and cached.body == b""
    assert cached.headers["ETag"] == etag
    stale = await download(api, att["url"], **{"If-None-Match": '"other"'})
    assert stale.status == 200 and stale.body == data


async def test_range_on_an_empty_file_is_ignored(api):
    # RFC 9110 14.2: a server MAY ignore Range when the representation has no
    # content; a 206 could not even spell the range (14.4 has no empty range).
    alice, _, bam = await pair(api)
    _, att = await upload(api, alice, bam["id"], b"", "empty.bin", "text/plain")
    assert att["size"] == 0, att
    for spec in ("bytes=-5", "bytes=0-", "bytes=0-0", "bytes=-0"):
        got = await download(api, att["url"], Range=spec)
        assert (got.status, got.body) == (200, b""), (spec, got.status, got.headers)
        assert "Content-Range" not in got.headers, spec


async def test_range_numbers_of_any_length_are_read_not_a_500(api):
    alice, _, bam = await pair(api)
    data = PDF + os.urandom(1000)
    _, att = await upload(api, alice, bam["id"], data, "d.pdf", "application/pdf")
    huge, size = "9" * 5000, len(data)
    cases = {
        f"bytes=0-{huge}": (206, f"bytes 0-{size - 1}/{size}", data),
        f"bytes=-{huge}": (206, f"bytes 0-{size - 1}/{size}", data),
        f"bytes={'0' * 5000}5-9": (206, f"bytes 5-9/{size}", data[5:10]),
        f"bytes={huge}-": (416, f"bytes */{size}", None),
        f"bytes={huge}-{huge}": (416, f"bytes */{size}", None),
    }
    for spec, (status, content_range, body) in cases.items():
        got = await download(api, att["url"], Range=spec)
        assert got.status == status, (spec[:20], got.status, got.body[:200])
        assert got.headers["Content-Range"] == content_range, spec[:20]
        if body is not None:
            assert got.body == body, spec[:20]


async def test_message_with_attachments_live_in_history_and_replay(api, peers):
    alice, bob, bam = await pair(api)
    _, photo = await upload(api, alice, bam["id"], png(500, 250), "p.png", "image/png")
    _, doc = await upload(api, alice, bam["id"], PDF, "d.pdf", "application/pdf")
    bob_peer = await peers(bob)
    joined = await bob_peer.call("join-bam", bam["id"])
    assert joined["ok"], joined
    alice_peer = await peers(alice)

    ack = await alice_peer.call(
        "send-message",
        {"bamId": bam["id"], "content": "", "attachmentIds": [photo["id"], doc["id"]]},
    )
    assert ack["ok"], ack
    [live] = await bob_peer.wait_for(
        "new-message", where=lambda m: m["id"] == ack["message"]["id"]
    )
    assert live["content"] == ""
    assert [a["id"] for a in live["attachments"]] == [photo["id"], doc["id"]]
    shown = live["attachments"][0]
    assert {k: shown[k] for k in ("name", "kind", "width", "height")} == {
        "name": "p.png", "kind": "image", "width": 500, "height": 250,
    }  # fmt: skip
    thumb = await download(api, shown["thumbnailUrl"])  # bob, no header
    assert Image.open(io.BytesIO(thumb.body)).size == (320, 160)

    _, history = await api.request(
        "GET", f"/bams/{bam['id']}/messages", token=bob.access, expect=200
    )
    [stored] = [m for m in history["results"] if m["id"] == live["id"]]
    assert [a["id"] for a in stored["attachments"]] == [photo["id"], doc["id"]]
    assert (await download(api, stored["attachments"][1]["url"])).body == PDF

    late = await peers(bob)
    rejoin = await late.call(
        "join-bam", {"bamId": bam["id"], "sinceSeq": live["seq"] - 1}
    )
    assert rejoin["ok"] and rejoin["missed"] == 1, rejoin
    [replayed] = late.got("new-message")
    assert [a["id"] for a in replayed["attachments"]] == [photo["id"], doc["id"]]


async def test_attachment_ids_follow_one_rule_over_rest_and_socket_io(api, peers):
    alice, bob, bam = await pair(api)
    other_bam = await api.bam(alice)
    _, mine = await upload(api, alice, bam["id"], PDF, "a.pdf", "application/pdf")
    _, bobs = await upload(api, bob, bam["id"], PDF, "b.pdf", "application/pdf")
    _, elsewhere = await upload(
        api, alice, other_bam["id"], PDF, "c.pdf", "application/pdf"
    )
    alice_peer = await peers(alice)

    refused = [
        [bobs["id"]],  # not the sender's
        [elsewhere["id"]],  # another BAM's
        ["nope"],
        [mine["id"]] * 1 + [str(i) for i in range(1, 11)],  # 11 ids
    ]
    for ids in refused:
        status, body = await api.request(
            "POST",
            f"/bams/{bam['id']}/messages",
            token=alice.access,
            json={"content": "", "attachmentIds": ids},
        )
        ack = await alice_peer.call(
            "send-message", {"bamId": bam["id"], "content": "", "attachmentIds": ids}
        )
        assert status == 400 and "attachmentIds" in body, (ids, body)
        assert ack["error"]["code"] == "invalid", (ids, ack)
        assert "attachmentIds" in ack["error"]["fields"], ack

    sent = await api.post_message(
        alice, bam["id"], "with a file", attachmentIds=[mine["id"]]
    )
    assert [a["id"] for a in sent["attachments"]] == [mine["id"]]
    # Used once, never again.
    ack = await alice_peer.call(
        "send-message",
        {"bamId": bam["id"], "content": "x", "attachmentIds": [mine["id"]]},
    )
    assert ack["ok"] is False and ack["error"]["code"] == "invalid", ack
    # Without attachments, content is still required.
    status, _ = await api.request(
        "POST", f"/bams/{bam['id']}/messages", token=alice.access, json={"content": ""}
    )
    assert status == 400
