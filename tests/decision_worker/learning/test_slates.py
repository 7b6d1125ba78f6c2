"""The window's decision moments: the cuts of train / validation / evaluation read only the
first and the last of them (slates.decision_span)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from decision_worker.learning.replay import parse_log
from decision_worker.learning.slates import decision_span

T0 = 1_790_000_000  # 2026-09-21


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")


def _message(n: int, event: str, at: float, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "userId": f"u{n % 3}", "messageId": f"m{n}",
            "timestamp": _iso(at), "receivedAt": _iso(at + 1), "properties": properties}


def test_the_span_runs_from_the_first_to_the_last_slate_or_session_start_in_the_window(
) -> None:
    messages = [
        _message(0, "Variant Viewed", T0 - 50, placement="hero", variant="a"),  # before
        _message(1, "Session Started", T0 + 5),
        _message(2, "Variant Viewed", T0 + 10, placement="hero", variant="a"),
        _message(3, "Variant Viewed", T0 + 10, placement="hero", variant="b"),
        _message(4, "Variant Clicked", T0 + 900, placement="hero", variant="b"),
        _message(5, "Variant Viewed", T0 + 700, placement="hero", variant="c"),
        _message(6, "Variant Viewed", T0 + 2000, placement="hero", variant="a"),  # after
    ]
    events, invalid = parse_log(messages)
    assert invalid == 0
    assert decision_span(events, T0, T0 + 1000) == (T0 + 5, T0 + 700)
    # a click is no decision moment; without the session start the first slate opens it
    assert decision_span([e for e in events if not e.session_start], T0, T0 + 1000) == (
        T0 + 10, T0 + 700)


def test_a_window_without_slates_or_session_starts_has_no_span() -> None:
    events, _ = parse_log([_message(0, "Variant Clicked", T0, placement="hero", variant="a"),
                           _message(1, "Variant Viewed", T0 - 10, placement="hero",
                                    variant="a")])
    assert decision_span(events, T0 - 5, T0 + 100) is None
