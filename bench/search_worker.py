"""The server side of ``bench/search.py``: runs under the project's virtualenv
with the app's settings (``DATABASE_URL`` names the bench's own database).

    python bench/search_worker.py fill   '{"messages": ..., ...}'
    python bench/search_worker.py search '{"repeats": ..., ...}'
    python bench/search_worker.py insert '{"singles": ..., ...}'

Each mode prints one ``RESULT {...}`` line on stdout (progress on stderr).

This file sets Django up and runs the mode; the modes live beside it:
``fill`` (users, BAMs, memberships and messages, the vocabulary and texts they
are drawn from) in ``search_data.py``, ``search`` and ``insert`` (the selector's
latency, the write path's cost) in ``search_measure.py``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bamchat.settings")

import django  # noqa: E402

django.setup()

from search_data import fill  # noqa: E402
from search_measure import insert, search  # noqa: E402


def result(payload: dict) -> None:
    print("RESULT " + json.dumps(payload), flush=True)


def main() -> None:
    mode, raw = sys.argv[1], sys.argv[2]
    args = json.loads(raw)
    run = {"fill": fill, "search": search, "insert": insert}[mode]
    result(run(args))


if __name__ == "__main__":
    main()
