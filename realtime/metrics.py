"""This process's realtime figures: events in and out, delivery lag, the layer.

The counters run once per client event and once per emit, so each keeps its
labelled children in a dict bound once; a label value never comes from what a
client chose (an unknown event name is counted as ``other``). Live connections
and listener restarts cost nothing until a scrape: ``ServerCollector`` reads them
from the server then.
"""

import logging
import time

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

logger = logging.getLogger(__name__)

OTHER = "other"
TRANSPORTS = ("websocket", "polling")
# Server event names are ours, not clients'; this many distinct ones is already a
# mistake, so any further name is counted as ``other``.
EMITTED_NAMES_MAX = 64
# Commit → emit: milliseconds on one process, more across Redis or under load.
LAG_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

EVENTS_RECEIVED = Counter(
    "bamchat_socketio_events_received",
    "Client events received by this process, by event and outcome (ok or the "
    "ack's error code).",
    ["event", "outcome"],
)
EVENTS_EMITTED = Counter(
    "bamchat_socketio_events_emitted",
    "Event packets encoded for this process's sockets (one per emit, whatever "
    "the number of recipients).",
    ["event"],
)
EVENT_DELIVERIES = Counter(
    "bamchat_socketio_event_deliveries",
    "Events sent to individual sockets of this process.",
    ["event"],
)
DELIVERY_LAG_SECONDS = Histogram(
    "bamchat_delivery_lag_seconds",
    "Time from a BAM event's commit to its emit to this process's sockets "
    "(wall clock; once per event, not per recipient).",
    buckets=LAG_BUCKETS_S,
)
HELD_EVENTS = Counter(
    "bamchat_delivery_held_events",
    "Live BAM events that reached this process before an earlier seq of their "
    "BAM and waited for it (events of several processes overtaking each other).",
)
HOLD_TIMEOUTS = Counter(
    "bamchat_delivery_hold_timeouts",
    "Times the earlier seq that held events back did not come within the "
    "hold-back (lost on the layer, or slower): what waited was delivered, the "
    "gap filled from the database.",
)
GAP_FILLS = Counter(
    "bamchat_delivery_gap_fills",
    "Reads of a BAM's history that brought sockets up to an event they were "
    "behind (one read per gap, whatever the number of sockets).",
)
PUBLISH_FAILURES = Counter(
    "bamchat_channel_layer_publish_failures",
    "Events this process could not hand to the channel layer, by sender "
    "(bus: our events, each counted even when several travelled together; "
    "manager: python-socketio's own).",
    ["sender"],
)
BUS_PUBLISH_FAILURES = PUBLISH_FAILURES.labels("bus")
OUTPUT_OVERFLOWS = Counter(
    "bamchat_realtime_output_overflows",
    "WebSockets closed because their client left more than "
    "REALTIME_OUTPUT_BUDGET_BYTES unread.",
)
MANAGER_PUBLISH_FAILURES = PUBLISH_FAILURES.labels("manager")


class ReceivedEvents:
    """Counts client events by handler name (``other`` for any other name)."""

    def __init__(self) -> None:
        self.names: frozenset[str] = frozenset()
        self._children: dict[tuple[str, str], object] = {}

    def bind(self, names) -> None:
        """The events that have handlers; each starts at 0 with outcome ``ok``."""
        self.names = frozenset(names)
        for name in self.names:
            self._child(name, "ok")

    def count(self, event, ack: dict) -> dict:
        """Count one event by the ack it got; returns the ack."""
        outcome = "ok" if ack.get("ok") else ack["error"]["code"]
        name = event if event in self.names else OTHER
        child = self._children.get((name, outcome))
        if child is None:
            child = self._child(name, outcome)
        child.inc()
        return ack

    def count_refused(self) -> None:
        """An event the server refused before any handler (a reserved name)."""
        self.count(OTHER, {"ok": False, "error": {"code": "invalid"}})

    def _child(self, name: str, outcome: str):
        child = EVENTS_RECEIVED.labels(name, outcome)
        self._children[(name, outcome)] = child
        return child


class EmittedEvents:
    """Counts packets and per-socket deliveries by server event name."""

    def __init__(self) -> None:
        self._children: dict[str, tuple] = {}

    def count(self, event: str, deliveries: int) -> None:
        """One packet of ``event`` went to ``deliveries`` sockets."""
        children = self._children.get(event)
        if children is None:
            children = self._bind(event)
        children[0].inc()
        if deliveries:
            children[1].inc(deliveries)

    def _bind(self, event: str) -> tuple:
        name = event if len(self._children) < EMITTED_NAMES_MAX else OTHER
        children = (EVENTS_EMITTED.labels(name), EVENT_DELIVERIES.labels(name))
        if name == event:
            self._children[event] = children
        return children


received = ReceivedEvents()
emitted = EmittedEvents()


def observe_delivery_lag(committed_at: float) -> None:
    """A BAM event committed at ``committed_at`` (POSIX seconds) was emitted now."""
    DELIVERY_LAG_SECONDS.observe(max(0.0, time.time() - committed_at))


class ServerCollector:
    """Scrape-time figures of one Socket.IO server: connections, listener, layer."""

    def __init__(self, server) -> None:
        self.server = server

    def describe(self):
        return self._families()

    def collect(self):
        families = self._families()
        connections = families[0]
        counts = dict.fromkeys(TRANSPORTS, 0)
        for transport in self._transports():
            counts[transport] = counts.get(transport, 0) + 1
        for transport, count in counts.items():
            connections.add_metric([transport], count)
        health = self.server.health()
        families[1].add_metric([], health["listenerRestarts"])
        families[2].add_metric([], 0 if health["layerDown"] else 1)
        return families

    def _families(self) -> list:
        return [
            GaugeMetricFamily(
                "bamchat_socketio_connections",
                "Live Socket.IO connections of this process, by transport.",
                labels=["transport"],
            ),
            CounterMetricFamily(
                "bamchat_realtime_listener_restarts",
                "Times this process's channel-layer listener stopped and was "
                "restarted.",
                labels=[],
            ),
            GaugeMetricFamily(
                "bamchat_channel_layer_up",
                "1 while this process reaches the channel layer, 0 while it does not.",
                labels=[],
            ),
        ]

    def _transports(self) -> list[str]:
        """Each local socket's transport as the engine knows it now (an upgrade
        to WebSocket is seen here before the roster hears of it)."""
        # The event loop changes the roster while a scrape reads it from a
        # worker thread; copying a dict is one step, retried if it races.
        for _ in range(3):
            try:
                infos = list(self.server.roster.local.values())
                break
            except RuntimeError:
                continue
        else:
            return []
        sockets = self.server.eio.sockets
        found = []
        for info in infos:
            sock = sockets.get(info.eio_sid)
            if sock is None:
                found.append(info.transport)
            else:
                found.append("websocket" if sock.upgraded else "polling")
        return found


def client_event_names(namespace) -> list[str]:
    """The client events a namespace has handlers for (``on_join_bam`` → join-bam)."""
    return [
        name[3:].replace("_", "-")
        for name in dir(type(namespace))
        if name.startswith("on_")
        and getattr(getattr(namespace, name), "client_event", False)
    ]


def register_server(server) -> None:
    """Serve this server's figures: its client events and its scrape-time state."""
    received.bind(client_event_names(server.namespace_handlers["/"]))
    REGISTRY.register(ServerCollector(server))
