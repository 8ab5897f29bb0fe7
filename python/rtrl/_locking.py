"""One lock per shared object: a call holds it for its whole duration."""

from __future__ import annotations

import functools
from typing import Any, Callable


def locked(method: Callable) -> Callable:
    """Runs ``method`` holding the object's ``_lock`` (a ``threading.RLock``): calls on one object
    from several threads take turns, each call whole; calls on different objects run concurrently."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self.__dict__["_lock"]:
            return method(self, *args, **kwargs)
    return wrapper
