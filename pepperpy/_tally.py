"""Adding up a stream as it passes: the hooks that watch streams (usage, tracing, the call log) share this.

Kept free of pydantic so that reading the call log (``pepperpy logs``) stays light.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class StreamTally:
    """What a stream has carried so far: its text, its last usage, its merged metadata, its finish reason."""

    pieces: list[str] = dataclasses.field(default_factory=list)
    usage: Any = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    finish_reason: str | None = None

    def add(self, chunk: Any) -> None:
        if chunk.content:
            self.pieces.append(chunk.content)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.metadata:
            self.metadata.update(chunk.metadata)
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason


__all__ = ["StreamTally"]
