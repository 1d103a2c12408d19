"""Several rounds of one run: each figure's median round, and issue 19's CPU ratios.

A shared machine moves a phase's figures by more than the changes worth
measuring. ``--rounds N`` measures every server's phases N times, the servers
taking turns, so that slow and fast stretches of the machine fall on all of
them; the table shows, for each server and phase, the round with the median
figure, and ``cpu_ratios`` gives issue 19's ratios of server CPU per delivered
message round by round (each from servers measured minutes apart) with their
median.
"""

from __future__ import annotations

from statistics import median

from .config import TIMES

# The figure a phase's rounds are ranked by; phases not named keep the last round.
MAIN_FIGURE = {
    "idle": "kbPerConnection",
    "storm": "seconds",
    "chat_closed": "serverCpuUsPerDelivery",
    "relay_closed": "serverCpuUsPerDelivery",
    "rest_closed": "serverCpuUsPerDelivery",
    "chat_open_1k": "serverCpuUsPerDelivery",
    "chat_open_5k": "serverCpuUsPerDelivery",
    "relay_open": "serverCpuUsPerDelivery",
    "rest_open": "serverCpuUsPerDelivery",
}

# An open loop delivering less than this share of its offered rate fell behind.
BEHIND_SHARE = 0.9

_RELAYS = ("py-relay-cluster", "py-relay-redis")

# Issue 19's targets: (label, phase, numerator server, denominator server, limit).
CPU_RATIOS = [
    ("SQLite ÷ python-socketio relay", "chat_closed", "daphne", "py-relay", 1.5),
    ("PG+Redis ÷ SQLite", "chat_closed", "daphne-pg", "daphne", 1.3),
    ("2 processes ÷ 1 (PG+Redis)", "chat_closed", "cluster", "daphne-pg", 1.2),
    # The same pair at the same offered load: in the closed loop each of the two
    # processes carries about half of what the one process does, and a process's
    # CPU per delivery depends on its load (what arrives together is handled
    # together), so there the ratio also measures that; here it does not.
    ("2 processes ÷ 1, equal load", "chat_open_1k", "cluster", "daphne-pg", 1.2),
    ("2 processes ÷ 1, equal load", "chat_open_5k", "cluster", "daphne-pg", 1.2),
    ("typing relay, 2 processes ÷ 1", "relay_closed", "cluster", "daphne-pg", None),
    # The reference: python-socketio alone, through its own Redis manager.
    ("python-socketio relay, 2 processes ÷ 1", "chat_closed", *_RELAYS, None),
    ("python-socketio relay, 2 ÷ 1, equal load", "chat_open_1k", *_RELAYS, None),
    ("python-socketio relay, 2 ÷ 1, equal load", "chat_open_5k", *_RELAYS, None),
]


def _figure(
    results: dict, key: str, phase: str, field: str | None = None
) -> float | None:
    r = results.get(key, {}).get(phase)
    if not isinstance(r, dict) or "error" in r:
        return None
    value = r.get(field or MAIN_FIGURE.get(phase, ""))
    return value if isinstance(value, int | float) else None


def _behind(results: dict, key: str, phase: str) -> bool:
    """Whether a server fell behind an open loop's offered rate in this round
    (its deliveries took longer than the sending): that round's CPU is not at
    the load the other server carried, so its ratio is left out."""
    rate = _figure(results, key, phase, "targetRate")
    done = _figure(results, key, phase, "deliveredPerS")
    return rate is not None and done is not None and done < BEHIND_SHARE * rate


def _busy(rounds: list[dict], key: str, phase: str) -> str:
    """How busy the whole machine was in a server's phase (median of rounds)."""
    got = [
        x
        for r in rounds
        if (x := _figure(r, key, phase, "machineBusyShare")) is not None
    ]
    return f"{median(got):.0%}" if got else "?"


def median_round(rounds: list[dict]) -> dict:
    """Per server and phase, the result of the round with the median figure
    (the lower middle one of an even count); errors win, so none is hidden."""
    merged: dict = {}
    for key in rounds[-1]:
        merged[key] = dict(rounds[-1][key])
        for phase in merged[key]:
            if phase not in MAIN_FIGURE:
                continue
            runs = [r.get(key, {}).get(phase) for r in rounds]
            if any(isinstance(x, dict) and "error" in x for x in runs):
                merged[key][phase] = next(
                    x for x in runs if isinstance(x, dict) and "error" in x
                )
                continue
            ranked = sorted(
                (v, i)
                for i, r in enumerate(rounds)
                if (v := _figure(r, key, phase)) is not None
            )
            if ranked:
                merged[key][phase] = rounds[ranked[(len(ranked) - 1) // 2][1]][key][
                    phase
                ]
    return merged


def cpu_ratios(
    rounds: list[dict], quick: bool = False, corun: list | None = None
) -> list[str]:
    """Issue 19's ratios of server CPU per delivered message, per round and
    their median, for the pairs of servers that ran, and the machine's own
    charge for two busy CPUs (``corun``, by round); markdown lines."""
    rows = []
    for label, phase, top, bottom, limit in CPU_RATIOS:
        ratios: list[float | str | None] = []
        for r in rounds:
            a, b = _figure(r, top, phase), _figure(r, bottom, phase)
            if a is None or not b:
                ratios.append(None)
            elif _behind(r, top, phase) or _behind(r, bottom, phase):
                ratios.append("behind")
            else:
                ratios.append(a / b)
        got = [x for x in ratios if isinstance(x, float)]
        if not got:
            continue
        mid = median(got)
        verdict = ""
        if limit is not None:
            met = sum(x <= limit for x in got)
            verdict = (
                f" — target ≤ {limit}{TIMES}: "
                f"{'met' if mid <= limit else 'missed'} by the median, "
                f"{met} of {len(got)} rounds within it"
            )
        cells = ", ".join(
            f"{x:.2f}{TIMES}" if isinstance(x, float) else x or "n/a" for x in ratios
        )
        busy = (
            f"machine {_busy(rounds, top, phase)} / {_busy(rounds, bottom, phase)} busy"
        )
        rows.append(
            f"- {label} ({phase}): {cells}; median {mid:.2f}{TIMES}{verdict} ({busy})"
        )
    if not rows:
        return []
    got = [x for x in corun or () if x is not None]
    if got:
        cells = ", ".join(f"{x:.2f}{TIMES}" for x in got)
        rows.append(
            f"- the machine: the same Python work run on both CPUs at once took "
            f"{cells} the CPU time it took alone; median {median(got):.2f}{TIMES} "
            "(part of any 2 ÷ 1 ratio here, paid before any work of a second process)"
        )
    plural = "s" if len(rounds) > 1 else ""
    return [
        "Server CPU per delivered message, ratios of issue 19 "
        f"({len(rounds)} round{plural}, servers taking turns"
        + ("; quick mode: indicative only" if quick else "")
        + "):",
        *rows,
    ]
