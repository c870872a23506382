"""The whole-call deadline of an LLM ``generate``, and the record of it that spares the HTTP edge a second timer.

The LLM base class bounds every ``generate`` with a ``Deadline`` (one loop timer that cancels the task, as
``asyncio.timeout`` does, without its extra bookkeeping), which records itself while open;
``pepperpy.http.post_json`` skips its own timer when the recorded deadline comes no later than its own, since
the guard's then always fires first. Only the task that opened the deadline sees it (a task the call starts
keeps its own timer).
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import Any

_Enforced = tuple["asyncio.Task[Any] | None", float]
_enforced: ContextVar[_Enforced | None] = ContextVar("pepperpy_enforced_deadline", default=None)


class Deadline:
    """Cancels the running task ``seconds`` from now unless ``close()``d first (``close()`` says whether it did)."""

    __slots__ = ("_task", "_cancelling", "_handle", "_token", "_fired")

    def __init__(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        when = loop.time() + seconds
        task = asyncio.current_task(loop)
        assert task is not None, "a Deadline is opened inside a task"
        self._task, self._cancelling, self._fired = task, task.cancelling(), False
        self._handle = loop.call_at(when, self._fire)
        self._token = _enforced.set((task, when))

    def _fire(self) -> None:
        self._fired = True
        self._task.cancel()

    def close(self) -> bool:
        """Stop the timer; True when it had fired and nobody else cancelled the task: the CancelledError the
        task got (or gets) is this deadline's, for the caller to turn into its timeout error."""
        self._handle.cancel()
        _enforced.reset(self._token)
        return self._fired and self._task.uncancel() <= self._cancelling


def enforced_by(deadline: float) -> bool:
    """True when the running task is inside a guard whose deadline comes no later than ``deadline`` (a loop time)."""
    enforced = _enforced.get()
    return enforced is not None and enforced[1] <= deadline and enforced[0] is asyncio.current_task()


__all__ = ["Deadline", "enforced_by"]
