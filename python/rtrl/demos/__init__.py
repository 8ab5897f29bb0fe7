"""Demos run by ``rtrl demo [TASK]``; each module has ``run(...) -> list[dict]`` and ``main(args)``."""

from __future__ import annotations

from . import oscillators

DEMOS = {"oscillators": oscillators}
DEFAULT = "oscillators"
