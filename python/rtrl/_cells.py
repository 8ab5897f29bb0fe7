"""What Python knows of each recurrent cell — gate count, state parts, bias columns — read from the
native core's cell files (``cpp/include/rtrl/cells/``), so that no layout is written twice."""

from __future__ import annotations

from ._backend import _load_cpu_module

#: cell name -> {"gates", "state_parts", "bias_columns", "coefficients"}
CELL_INFO: dict[str, dict[str, int]] = {k: dict(v) for k, v in _load_cpu_module().cell_info().items()}

#: cell name -> number of gates (rows of ``weight_ih`` per hidden unit)
GATES: dict[str, int] = {k: v["gates"] for k, v in CELL_INFO.items()}
