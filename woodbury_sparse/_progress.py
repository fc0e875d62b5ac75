"""Progress of long work: a user's callback, a tqdm bar on a terminal, or nothing.

Every function that may run long (a network scan, a Dask computation) takes ``progress``
and reads it here, once, with :func:`reporter`:

* ``None`` or ``False`` (the default everywhere): silent;
* ``True``: a bar on ``sys.stderr`` when it is a terminal (or a Jupyter kernel's
  stream, which shows the bar below the cell): tqdm's when tqdm is installed (the
  ``progress`` extra), else one line rewritten in place; silent when ``sys.stderr`` is
  not a terminal (a log file, CI, pytest's capture);
* a callable: called as ``progress(done, total)`` with integers, first ``(0, total)``,
  then whenever ``done`` grows; ``done`` never decreases and the last call of a run that
  finishes is ``(total, total)``. It runs in the caller's thread.

Anything else is refused (``TypeError`` naming ``progress``) before any work starts.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

try:
    from tqdm import tqdm
except ImportError:  # the optional extra is not installed
    tqdm = None

#: What a callback receives: ``(done, total)``.
ProgressCallback = Callable[[int, int], object]


def check(progress: object) -> None:
    """Refuse a ``progress`` that is neither None, a bool nor a callable."""
    if progress is None or isinstance(progress, bool) or callable(progress):
        return
    raise TypeError(
        "`progress` must be None, False (silent), True (a bar on a terminal) or a callable "
        f"progress(done, total); got {type(progress).__name__} {progress!r:.60}"
    )


class Reporter:
    """One run's progress: :meth:`start` with the total, :meth:`update`, :meth:`close`.

    Silent when it has no callback. Monotone: an update to a smaller ``done`` than one
    already reported (a Dask task recomputed after a worker was lost) is not reported.
    """

    def __init__(self, callback: ProgressCallback | None, bar: Any = None) -> None:
        self._callback = callback
        self._bar = bar
        self.total = 0
        self.done = 0

    @property
    def silent(self) -> bool:
        """Whether nothing is reported (no callback, no bar)."""
        return self._callback is None and self._bar is None

    def start(self, total: int) -> None:
        self.total = max(0, int(total))
        self.done = 0
        if self._bar is not None:
            self._bar.reset(total=self.total)
        if self._callback is not None:
            self._callback(0, self.total)

    def update(self, done: int) -> None:
        """Report ``done`` units of the total finished (absolute, not an increment)."""
        done = min(int(done), self.total)
        if done <= self.done:
            return
        if self._bar is not None:
            self._bar.update(done - self.done)
        self.done = done
        if self._callback is not None:
            self._callback(done, self.total)

    def advance(self, units: int = 1) -> None:
        """Report ``units`` more units finished."""
        self.update(self.done + units)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Line:
    """The bar of ``progress=True`` without tqdm: one line on stderr, rewritten."""

    def __init__(self, desc: str, unit: str) -> None:
        self.desc, self.unit = desc, unit
        self.total = self.n = 0

    def reset(self, total: int) -> None:
        self.total, self.n = total, 0
        self._draw()

    def update(self, k: int) -> None:
        self.n += k
        self._draw()

    def _draw(self) -> None:
        percent = 100 * self.n // self.total if self.total else 100
        sys.stderr.write(f"\r{self.desc}: {percent:3d}% ({self.n}/{self.total} {self.unit})")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def _on_terminal() -> bool:
    """Whether ``sys.stderr`` is shown as it is written: a terminal or a Jupyter kernel's."""
    if type(sys.stderr).__module__.startswith("ipykernel."):
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def reporter(progress: object, desc: str, unit: str = "it") -> Reporter:
    """The :class:`Reporter` that ``progress`` asks for (see the module's docstring)."""
    check(progress)
    if progress is None or progress is False:
        return Reporter(None)
    if progress is True:
        if not _on_terminal():
            return Reporter(None)
        if tqdm is not None:
            bar = tqdm(total=0, desc=desc, unit=unit, unit_scale=True, file=sys.stderr)
        else:
            bar = _Line(desc, unit)
        return Reporter(None, bar)
    return Reporter(progress)  # type: ignore[arg-type]
