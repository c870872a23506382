"""The whole-call deadline a guard already enforces, so that the HTTP edge inside it arms no second timer.

The LLM base class bounds every ``generate`` with ``asyncio.timeout`` and records that deadline here
(``record``, then ``forget``); ``pepperpy.http.post_json`` skips its own timer when the recorded deadline
comes no later than its own, since the guard's then always fires first. Only the task that entered the
guard sees it (a task the call starts keeps its own timer).
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar, Token
from typing import Any

_Enforced = tuple["asyncio.Task[Any] | None", float]
_enforced: ContextVar[_Enforced | None] = ContextVar("pepperpy_enforced_deadline", default=None)


def record(when: float) -> Token[_Enforced | None]:
    """Record ``when`` (a loop time: ``asyncio.Timeout.when()``) as the running task's enforced deadline."""
    return _enforced.set((asyncio.current_task(), when))


def forget(token: Token[_Enforced | None]) -> None:
    """Undo ``record`` (the guard's scope ended)."""
    _enforced.reset(token)


def enforced_by(deadline: float) -> bool:
    """True when the running task is inside a guard whose deadline comes no later than ``deadline`` (a loop time)."""
    enforced = _enforced.get()
    return enforced is not None and enforced[1] <= deadline and enforced[0] is asyncio.current_task()


__all__ = ["enforced_by", "forget", "record"]
