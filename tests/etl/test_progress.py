"""The load progress bar: drawn on a terminal, silent otherwise."""

from __future__ import annotations

import io

from etl.progress import LoadProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal() -> None:
    out = Terminal()
    with LoadProgress("hazards.csv", out) as progress:
        progress("reading")
        progress("loading", 50_000, 200_000)
        progress("loading", 200_000, 200_000)
    text = out.getvalue()
    assert "hazards.csv: loading" in text and "200000/200000" in text.replace(",", "")


def test_silent_when_not_a_terminal() -> None:
    out = io.StringIO()
    with LoadProgress("hazards.csv", out) as progress:
        progress("loading", 1, 2)
    assert out.getvalue() == ""
