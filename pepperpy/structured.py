"""Structured output: the JSON schema to ask for, and validating the answer into a pydantic model."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def json_schema_format(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAI's ``response_format`` for a JSON schema."""
    return {"type": "json_schema", "json_schema": {"name": model.__name__, "schema": model.model_json_schema()}}


def schema_instruction(model: type[BaseModel]) -> str:
    """For services without schema support: the instruction that asks for JSON of this shape."""
    import json

    return (
        "Answer with one JSON object only, no prose and no code fence, that validates against this JSON schema:\n"
        + json.dumps(model.model_json_schema())
    )


def parse(model: type[BaseModel], content: str) -> tuple[Any, str | None]:
    """``(instance, None)`` or ``(None, the validation problem)``."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return model.model_validate_json(text), None
    except ValidationError as exc:
        return None, str(exc)


__all__ = ["json_schema_format", "parse", "schema_instruction"]
