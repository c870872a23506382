"""``pepperpy plugins clean``: remove plugin envs unused for N days and folders of interrupted installs.

Every env under ``<home>/envs`` has a last-used record that using its plugin refreshes (at most
once an hour); an env without one counts from its install stamp. An env is never removed because
no plugin folder here names it (other projects share the home), and nothing is touched while its
lock is held: a live process is installing it. Without a terminal the command runs without asking,
as with ``--yes``; on a terminal it lists what it would remove and asks first.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from pepperpy._filelock import try_lock
from pepperpy._envs import ENV_NAME
from pepperpy._install import last_used, staging_target
from pepperpy.cli._common import manager, print_table

DAY_S = 86400.0


@dataclass(frozen=True)
class Removal:
    """A folder removed (or, in a dry run, to remove), why, and the bytes that frees."""

    path: Path
    reason: str
    freed: int


@dataclass
class CleanResult:
    removed: list[Removal] = field(default_factory=list)
    locked: list[Path] = field(default_factory=list)  # kept: a live process holds their lock
    failed: list[str] = field(default_factory=list)  # could not be removed, with the reason

    @property
    def freed(self) -> int:
        return sum(r.freed for r in self.removed)


def clean_envs(envs: Path, days: float, dry_run: bool = False, now: float | None = None) -> CleanResult:
    """Remove (or only list) the envs unused for ``days`` days and the interrupted installs under ``envs``."""
    now = time.time() if now is None else now
    cutoff = now - days * DAY_S
    result = CleanResult()
    for name, paths in sorted(_candidates(envs, now, cutoff).items()):
        try:
            _clean_env(envs, name, paths, now, cutoff, dry_run, result)
        except OSError as exc:
            result.failed.append(f"{envs / name}: {exc.strerror or exc}")
    return result


def _clean_env(
    envs: Path, name: str, paths: list[Path], now: float, cutoff: float, dry_run: bool, result: CleanResult
) -> None:
    """Under the env's lock, if no live process holds it, remove those of ``paths`` that still qualify."""
    lock = envs / f"{name}.lock"
    with try_lock(lock) as held:
        if not held:
            result.locked.extend(paths)
            return
        for path in paths:
            reason = _reason(path, now, cutoff)  # again, under the lock: it may have been used or rebuilt
            if reason is not None:
                removal = Removal(path, reason, freed_bytes(path))
                if not dry_run:
                    _remove(path)
                result.removed.append(removal)
        if not dry_run and not (envs / name).exists():
            lock.unlink(missing_ok=True)  # while held: a process waiting for it notices and locks a new file


def _candidates(envs: Path, now: float, cutoff: float) -> dict[str, list[Path]]:
    """The folders worth removing, by the env name whose lock guards them."""
    try:
        entries = sorted(envs.iterdir())
    except FileNotFoundError:
        return {}
    found: dict[str, list[Path]] = {}
    for entry in entries:
        if _reason(entry, now, cutoff) is not None:
            found.setdefault(staging_target(entry.name) or entry.name, []).append(entry)
    return found


def _reason(path: Path, now: float, cutoff: float) -> str | None:
    """Why ``path`` should go, or None to keep it."""
    if path.is_symlink() or not path.is_dir():
        return None
    if staging_target(path.name):
        return "interrupted install"
    if not ENV_NAME.fullmatch(path.name):
        return None  # not a folder PepperPy made
    used = last_used(path)
    if used is None:
        return "incomplete install (no stamp)"
    if used < cutoff:
        return f"unused for {int((now - used) // DAY_S)} days"
    return None


def freed_bytes(root: Path) -> int:
    """Bytes that removing ``root`` frees: its files not hard-linked from elsewhere (uv's cache links many)."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            info = os.lstat(os.path.join(folder, name))
            if info.st_nlink == 1:
                total += info.st_size
    return total


def _remove(path: Path) -> None:
    """Remove ``path``; an env is first renamed to an install-leftover name, so a half-removed one is never used."""
    if staging_target(path.name) is None:
        trash = path.with_name(f".{path.name}.partial-removing")
        shutil.rmtree(trash, ignore_errors=True)
        os.rename(path, trash)
        path = trash
    shutil.rmtree(path)


def _size(count: int) -> str:
    value, unit = float(count), "B"
    for bigger in ("kB", "MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"


def _report(envs: Path, days: int, result: CleanResult, dry_run: bool) -> None:
    verb = "would remove" if dry_run else "removed"
    if result.removed:
        print_table([verb, "why", "frees"], [[r.path.name, r.reason, _size(r.freed)] for r in result.removed])
        count = len(result.removed)
        click.echo(
            f"{verb} {count} folder{'s' if count > 1 else ''} from {envs}: {_size(result.freed)} "
            f"({result.freed} bytes) {'would be ' if dry_run else ''}freed"
        )
    else:
        click.echo(f"nothing to clean in {envs} (no env unused for {days} days, no interrupted install)")
    for path in result.locked:
        click.echo(f"kept {path.name}: its lock is held (a running process is installing it)")
    for failure in result.failed:
        click.echo(f"pepperpy: could not remove {failure}; check who owns it and that {envs} is writable", err=True)


@click.command("clean")
@click.option("--days", default=30, show_default=True, type=click.IntRange(min=0), metavar="N",
              help="Remove envs not used for N days.")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask first (without a terminal it never asks).")
@click.pass_context
def clean(ctx: click.Context, days: int, dry_run: bool, yes: bool) -> None:
    """Remove plugin envs unused for N days and folders left by interrupted installs.

    An env's last use is recorded when a process uses its plugin (at most hourly), so envs of
    plugins that other projects use stay while those projects run them. Envs being installed
    are never touched. Without a terminal (scripts, cron) it runs without asking, as with --yes.
    """
    from pepperpy._envs import envs_folder

    envs = envs_folder(manager().home)
    ask = not (dry_run or yes) and sys.stdin.isatty()
    result = clean_envs(envs, days, dry_run=dry_run or ask)
    _report(envs, days, result, dry_run=dry_run or ask)
    if ask and result.removed:
        if not click.confirm("Remove them?"):
            click.echo("nothing removed")
            return
        result = clean_envs(envs, days)
        _report(envs, days, result, dry_run=False)
    if result.failed:
        ctx.exit(1)


__all__ = ["CleanResult", "Removal", "clean", "clean_envs", "freed_bytes"]
