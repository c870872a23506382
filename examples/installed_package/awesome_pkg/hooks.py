"""A hook every PepperPy in the environment runs around its LLM calls (entry-point group ``pepperpy.hooks``)."""

from typing import Any


async def stamp(call: Any, call_next: Any) -> Any:
    """Notes on each whole answer that this distribution's hook saw it."""
    outcome = await call_next(call)
    if not call.stream:
        outcome.metadata["seen_by"] = "awesome-pkg"
    return outcome
