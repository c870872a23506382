"""A plugin folder is code: warn when users other than its owner could change it (see SECURITY.md)."""

from __future__ import annotations

import os
import warnings

from pepperpy._log import logger

_WORLD_WRITABLE = 0o002


def warn_if_others_can_write(folder: str, files: list[str]) -> None:
    """Warn (``RuntimeWarning`` and the log) when ``folder`` or one of ``files`` is writable by every user."""
    exposed = []
    for path in [folder, *files]:
        try:
            if os.stat(path).st_mode & _WORLD_WRITABLE:
                exposed.append(path)
        except OSError:
            continue  # a missing file is reported by validation, not here
    if exposed:
        message = (
            f"plugin folder {folder}: {', '.join(exposed)} can be changed by every user of this machine, and PepperPy "
            f"runs its code; run `chmod o-w {' '.join(exposed)}` (see SECURITY.md)"
        )
        logger.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)


__all__ = ["warn_if_others_can_write"]
