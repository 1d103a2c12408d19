"""Compare channels-redis's core and pub/sub layers and BAM Chat's own
(``realtime.layer``) as BAM Chat uses them.

Three receiver processes (standing in for three daphne processes) each put one
channel in a BAM group; one sender process does ``group_send`` to that group, as
``realtime.events.publish`` does after each commit. Prints delivered events/s
and the latency from send to receive, per layer. Redis on 127.0.0.1 only.

    .venv/bin/python bench/channel_layers.py [--messages 3000] [--redis redis://127.0.0.1:6379/9]
"""

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import time

BACKENDS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "bamchat": "realtime.layer.RedisPubSubLayer",
}
# BAM Chat's own layer is imported from the project.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECEIVERS = 3
GROUP = "bam-bench"


def make_layer(kind: str, url: str):
    import importlib

    module, _, cls = BACKENDS[kind].rpartition(".")
    config = {"hosts": [url]}
    if kind == "core":
        config.update(capacity=100_000, expiry=60)
    return getattr(importlib.import_module(module), cls)(**config)


def receiver(kind: str, url: str, expected: int, ready, out) -> None:
    async def run():
        layer = make_layer(kind, url)
        channel = await layer.new_channel()
        await layer.group_add(GROUP, channel)
        ready.put(True)
        latencies = []
        deadline = time.monotonic() + 120
        while len(latencies) < expected and time.monotonic() < deadline:
            try:
                msg = await asyncio.wait_for(layer.receive(channel), 5)
            except TimeoutError:
                break
            latencies.append(time.time() - msg["sent"])
        await layer.group_discard(GROUP, channel)
        out.put(latencies)

    asyncio.run(run())


def sender(kind: str, url: str, messages: int, rate: float | None) -> float:
    async def run():
        layer = make_layer(kind, url)
        # The sender owns a channel, as every server process does (the channel
        # of its client manager): BAM Chat's layer keeps its publishing
        # connection on a loop that receives, and opens one per call elsewhere.
        await layer.new_channel()
        started = time.monotonic()
        for i in range(messages):
            if rate:
                target = started + i / rate
                delay = target - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            payload = {
                "type": "realtime.event",
                "method": "emit",
                "seq": i,
                "sent": time.time(),
            }
            payload["data"] = ["x" * 300]
            await layer.group_send(GROUP, payload)
        return time.monotonic() - started

    return asyncio.run(run())


def measure(kind: str, url: str, messages: int, rate: float | None) -> dict:
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    procs = [
        ctx.Process(target=receiver, args=(kind, url, messages, ready, out))
        for _ in range(RECEIVERS)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=30)
    started = time.monotonic()
    send_s = sender(kind, url, messages, rate)
    results = [out.get(timeout=180) for _ in procs]
    elapsed = time.monotonic() - started
    for p in procs:
        p.join(timeout=30)
    latencies = sorted(x for r in results for x in r)
    delivered = len(latencies)
    return {
        "layer": kind,
        "mode": f"{rate:.0f}/s" if rate else "max",
        "delivered": f"{delivered}/{messages * RECEIVERS}",
        "deliveries/s": delivered / elapsed,
        "send ms/msg": send_s * 1000 / messages,
        "p50 ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99 ms": latencies[int(len(latencies) * 0.99) - 1] * 1000
        if latencies
        else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument(
        "--rate", type=float, default=1000, help="events/s for the latency run"
    )
    parser.add_argument(
        "--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    )
    args = parser.parse_args()
    if not args.redis.startswith(
        ("redis://127.0.0.1", "redis://localhost", "redis://[::1]")
    ):
        sys.exit("Only a loopback Redis may be benchmarked.")
    rows = []
    for kind in BACKENDS:
        rows.append(measure(kind, args.redis, args.messages, None))
        rows.append(
            measure(kind, args.redis, min(args.messages, int(args.rate * 3)), args.rate)
        )
    cols = [
        "layer",
        "mode",
        "delivered",
        "deliveries/s",
        "send ms/msg",
        "p50 ms",
        "p99 ms",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        cells = [
            f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c]) for c in cols
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
