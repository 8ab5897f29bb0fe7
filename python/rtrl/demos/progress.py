"""A progress bar on stderr for the long demo runs (tqdm, when it is installed and stderr is a terminal)."""

from __future__ import annotations

import sys
from typing import Any


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "_Silent":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def progress_bar(total: int, desc: str, enabled: bool = True, unit: str = "it") -> Any:
    """A ``tqdm`` bar over ``total`` units on stderr, or an object with the same ``update``/``close``
    that shows nothing (when ``enabled`` is false, tqdm is missing or stderr is not a terminal).

    Parameters
    ----------
    total : int
        Units of work (steps, strings).
    desc : str
        Label shown before the bar.
    enabled : bool
        False shows nothing.
    unit : str
        What one unit is called ("step", "string", "network").
    """
    if not enabled or not getattr(sys.stderr, "isatty", lambda: False)():
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Silent()
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)
