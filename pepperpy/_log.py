"""The library's loguru logger, disabled until the user enables it.

PepperPy never adds sinks; turn its logs on with ``logger.enable("pepperpy")``
(and ``logger.enable("pepperpy_plugins")`` for the plugins' own logs).
"""

from loguru import logger

logger.disable("pepperpy")
logger.disable("pepperpy_plugins")

__all__ = ["logger"]
