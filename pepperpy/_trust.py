"""A plugin folder is code: warn when users other than its owner could change it (see SECURITY.md)."""

from __future__ import annotations

import os
import stat
import warnings

from pepperpy._log import logger

_WORLD_WRITABLE = 0o002


def open_to_others(folder: str, files: list[str], parent: bool = True) -> list[str]:
    """The paths among ``folder``, ``files`` and (with ``parent``) the folder holding ``folder`` that every user
    may change: world-writable (the parent: world-writable without the sticky bit, so others may swap the plugin)."""
    exposed = []
    for path in [folder, *files]:
        try:
            if os.stat(path).st_mode & _WORLD_WRITABLE:
                exposed.append(path)
        except OSError:
            continue  # a missing file is reported by validation, not here
    if not parent:
        return exposed
    holder = os.path.dirname(os.path.abspath(folder))
    try:
        mode = os.stat(holder).st_mode
    except OSError:
        return exposed
    if mode & _WORLD_WRITABLE and not mode & stat.S_ISVTX:
        exposed.append(holder)
    return exposed


def trust_problem(folder: str, exposed: list[str]) -> str:
    return (
        f"plugin folder {folder}: {', '.join(exposed)} can be changed by every user of this machine, and PepperPy "
        f"runs its code; run `chmod o-w {' '.join(exposed)}` (see SECURITY.md)"
    )


def warn_if_others_can_write(folder: str, files: list[str]) -> None:
    """Warn (``RuntimeWarning`` and the log) when every user may change ``folder`` or ``files`` (discovery: the
    folder holding it is left to ``pepperpy plugins check`` and ``doctor``, to keep discovery cheap)."""
    exposed = open_to_others(folder, files, parent=False)
    if exposed:
        message = trust_problem(folder, exposed)
        logger.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)


__all__ = ["open_to_others", "trust_problem", "warn_if_others_can_write"]
