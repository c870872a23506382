"""The library's loguru logger, silent until the user turns it on.

PepperPy never adds sinks. ``logger.enable("pepperpy")`` turns on PepperPy's logs and
the plugins' ``self.logger`` output alike (plugin modules load as
``pepperpy.loaded_plugins.*``), whether it is called before or after ``import pepperpy``.
"""

from typing import Any

from loguru import logger as _loguru


def _redacted(record: Any) -> None:
    """Hide known keys (pepperpy/_redact.py) in every message PepperPy and its plugins log."""
    from pepperpy._redact import redact

    record["message"] = redact(record["message"])


logger = _loguru.patch(_redacted)


def _user_chose_activation() -> bool:
    """True when ``logger.enable``/``disable`` was already called for pepperpy (before this import)."""
    activation = getattr(getattr(_loguru, "_core", None), "activation_list", None) or []
    return any(name == "pepperpy." for name, _ in activation)


if not _user_chose_activation():
    _loguru.disable("pepperpy")

__all__ = ["logger"]
