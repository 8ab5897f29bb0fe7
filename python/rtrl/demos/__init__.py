"""Demos run by ``rtrl demo [TASK]``; each module has ``run(...)`` and
``main(seeds=..., quick=..., plot_path=..., progress=...)``."""

from __future__ import annotations

from . import forecast, online, oscillators, reber, text, wz1989

DEMOS = {"wz1989": wz1989, "oscillators": oscillators, "forecast": forecast, "reber": reber, "text": text,
         "online": online}
DEFAULT = "wz1989"
