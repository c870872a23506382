"""The library's loguru logger, silent until the user turns it on.

PepperPy never adds sinks. ``logger.enable("pepperpy")`` turns on PepperPy's logs and
the plugins' ``self.logger`` output alike (plugin modules load as
``pepperpy.loaded_plugins.*``), whether it is called before or after ``import pepperpy``.
"""

from loguru import logger


def _user_chose_activation() -> bool:
    """True when ``logger.enable``/``disable`` was already called for pepperpy (before this import)."""
    activation = getattr(getattr(logger, "_core", None), "activation_list", None) or []
    return any(name == "pepperpy." for name, _ in activation)


if not _user_chose_activation():
    logger.disable("pepperpy")

__all__ = ["logger"]
