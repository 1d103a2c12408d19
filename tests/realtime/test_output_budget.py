"""A client that never reads costs the server its output budget, not its memory.

A hostile client joins a BAM full of large messages with ``sinceSeq: 0`` again
and again and reads nothing (a tiny receive window over a raw WebSocket). The
server pages each replay within ``REALTIME_REPLAY_MAX_BYTES``, closes the
connection once ``REALTIME_OUTPUT_BUDGET_BYTES`` wait unread, and its peak
memory stays within a margin of where it started.
"""

import asyncio
import json
import os
import secrets
import socket

import pytest

from tests.deploy import Deployment
from tests.live import EVENT_TIMEOUT_S, Api, Peer
from tests.realtime.test_metrics import scrape

pytestmark = pytest.mark.live

MESSAGES = 200
BIG = "\U0001f600" * 4000  # the longest content: 4,000 characters, 16 KB of UTF-8
JOINS = 20
BUDGET = 1024 * 1024
# Peak memory the whole attack may add. Before the budget, each join held every
# replayed event at once: 20 joins of ~10 MB of packets took hundreds of MB.
MARGIN_BYTES = 80 * 1024 * 1024
METRICS_TOKEN = secrets.token_urlsafe(32)
OVERFLOWS = "bamchat_realtime_output_overflows_total"


def _memory(pid: int) -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident memory of a process, in bytes."""
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) * 1024
    return found


def _reset_peak(pid: int) -> None:
    """Start a process's peak memory (VmHWM) again from its current memory."""
    with open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")


def _frame(text: str) -> bytes:
    """A masked WebSocket text frame, as a client must send it."""
    payload = text.encode()
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = bytes([0x81, 0x80 | size])
    elif size < 1 << 16:
        header = bytes([0x81, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x81, 0x80 | 127]) + size.to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


async def _read_frame(reader: asyncio.StreamReader) -> str:
    _, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    return (await reader.readexactly(size)).decode()


async def _non_reader(port: int, token: str):
    """A WebSocket with a 4 KB receive window that has said hello and connected."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), EVENT_TIMEOUT_S)
    assert b" 101 " in head, head
    opened = await asyncio.wait_for(_read_frame(reader), EVENT_TIMEOUT_S)
    assert opened.startswith("0"), opened
    writer.write(_frame("40" + json.dumps({"token": token})))
    connected = await asyncio.wait_for(_read_frame(reader), EVENT_TIMEOUT_S)
    assert connected.startswith("40"), connected
    return reader, writer


async def _wait_for_log(server, text: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while text not in server.log():
        assert loop.time() < deadline, f"{text!r} not logged within {timeout}s"
        await asyncio.sleep(0.1)  # polling the server's log, not waiting out time


@pytest.fixture
def budgeted():
    deployment = Deployment(
        REALTIME_OUTPUT_BUDGET_BYTES=str(BUDGET),
        REST_WRITE_RATE="100000/min",
        RATE_JOIN_BURST="1000",
        RATE_JOIN_PER_S="1000",
        METRICS_TOKEN=METRICS_TOKEN,
    )
    yield deployment.start_server("budgeted")
    deployment.close()


async def test_a_client_that_never_reads_is_closed_and_costs_little(budgeted):
    api = Api(budgeted.url)
    writer_account, reader_account = await api.account("w"), await api.account("r")
    bam = await api.bam(writer_account, reader_account)
    for start in range(0, MESSAGES, 20):
        await asyncio.gather(
            *(
                api.post_message(writer_account, bam["id"], BIG)
                for _ in range(start, min(start + 20, MESSAGES))
            )
        )

    # A reading client's replay is paged within the byte budget and says so.
    peer = Peer(budgeted.url, reader_account.access)
    await peer.connect()
    ack = await peer.call("join-bam", {"bamId": bam["id"], "sinceSeq": 0})
    assert ack["ok"] and ack["truncated"] is True, ack
    assert ack["lastSeq"] == MESSAGES, ack
    assert 0 < ack["missed"] < MESSAGES, ack
    got = await peer.wait_for("new-message", count=ack["missed"])
    assert [m["seq"] for m in got] == list(range(1, ack["missed"] + 1))
    await peer.close()

    overflows = (await scrape(api, METRICS_TOKEN)).get(OVERFLOWS)
    _reset_peak(budgeted.process.pid)
    before = _memory(budgeted.process.pid)["VmRSS"]
    _, writer = await _non_reader(budgeted.port, reader_account.access)
    for ack_id in range(JOINS):
        join = ["join-bam", {"bamId": bam["id"], "sinceSeq": 0}]
        writer.write(_frame(f"42{ack_id}" + json.dumps(join)))
    await _wait_for_log(budgeted, "Closed a WebSocket whose client does not read", 30)
    after = _memory(budgeted.process.pid)
    grew = after["VmHWM"] - before
    assert grew < MARGIN_BYTES, f"peak memory grew {grew / 2**20:.0f} MB"
    writer.close()
    assert (await scrape(api, METRICS_TOKEN)).get(OVERFLOWS) == overflows + 1

    # The server is unharmed: a new connection joins and reads as before.
    again = Peer(budgeted.url, reader_account.access)
    await again.connect()
    ack = await again.call("join-bam", {"bamId": bam["id"]})
    assert ack["ok"], ack
    await again.close()
    await api.close()
