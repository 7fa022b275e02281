"""``MotoPatch``: a reference-counted, reversible set of method replacements on moto's classes."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

Target = tuple[Any, str, Callable[..., Any]]  # (owner, attribute, wrapper factory taking the original)

_MISSING = object()


class MotoPatch:
    """Replacements started on ``start()`` and undone when the last holder calls ``stop()``.

    Nested or repeated ``start()`` calls are fine: the original methods come back when the
    last holder stops. Use as a context manager after ``start()``.
    """

    def __init__(self, name: str, targets: Callable[[], list[Target]]):
        self.name = name
        self._targets = targets
        self._saved: list[tuple[Any, str, Any]] = []
        self._count = 0
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self._count > 0

    def start(self) -> MotoPatch:
        with self._lock:
            if self._count == 0:
                for owner, attr, factory in self._targets():
                    original = owner.__dict__.get(attr, _MISSING)
                    wrapped = factory(original)
                    self._saved.append((owner, attr, original))
                    setattr(owner, attr, wrapped)
            self._count += 1
        return self

    def stop(self) -> None:
        with self._lock:
            if self._count == 0:
                return
            self._count -= 1
            if self._count == 0:
                for owner, attr, original in reversed(self._saved):
                    if original is _MISSING:
                        delattr(owner, attr)
                    else:
                        setattr(owner, attr, original)
                self._saved.clear()

    def __enter__(self) -> MotoPatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def locked(lock: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A wrapper factory that runs the original under ``lock``."""

    def factory(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return wrapper

    return factory
