"""Demos run by ``rtrl demo [TASK]``; each module has ``run(...) -> list[dict]`` and ``main(args)``."""

from __future__ import annotations

from . import oscillators, wz1989

DEMOS = {"oscillators": oscillators, "wz1989": wz1989}
DEFAULT = "wz1989"
