"""Issue 12 figures: wall time of `pepperpy --version` and `pepperpy plugins list`, above `python -c pass`."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench.common import ms, table, write_plugin

PEPPERPY = str(Path(sys.executable).parent / "pepperpy")


def _median_run(command: list[str], repeat: int, env: dict[str, str], cwd: Path, terminal: bool = False,
                before: object = None) -> float:
    """Median wall time of ``command``; ``terminal``: its stdout is a pseudo-terminal (rich output)."""
    samples = []
    for _ in range(repeat):
        if callable(before):
            before()
        primary, secondary = os.openpty() if terminal else (None, None)
        stdout = secondary if terminal else subprocess.DEVNULL
        started = time.perf_counter()
        subprocess.run(command, check=True, env=env, cwd=cwd, stdout=stdout, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - started)
        if terminal:
            os.close(secondary)
            os.close(primary)
    return statistics.median(samples)


def command_times(repeat: int = 10) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        # Byte-code cached as in an ordinary install (see core.py); the row without it is this checkout's case.
        env.update(PYTHONPYCACHEPREFIX=str(root / "pycache"), PEPPERPY_HOME=str(root / "home"), COLUMNS="160")
        uncached = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
        uncached.pop("PYTHONPYCACHEPREFIX")
        touched = write_plugin(root / "plugins" / "bench_touched", "bench_touched") / "plugin.json"
        env["PEPPERPY_PLUGIN_PATH"] = uncached["PEPPERPY_PLUGIN_PATH"] = str(root / "plugins")
        for command in ([PEPPERPY, "--version"], [PEPPERPY, "plugins", "list"]):  # fill the caches and the index
            _median_run(command, 2, env, root)

        def touch() -> None:
            os.utime(touched, ns=(time.time_ns(), time.time_ns()))

        baseline = _median_run([sys.executable, "-c", "pass"], repeat, env, root)
        runs = [
            ("pepperpy --version", [PEPPERPY, "--version"], env, False, None),
            ("pepperpy plugins list (fresh index)", [PEPPERPY, "plugins", "list"], env, False, None),
            ("pepperpy plugins list on a terminal (rich table)", [PEPPERPY, "plugins", "list"], env, True, None),
            ("pepperpy plugins list, one plugin.json touched", [PEPPERPY, "plugins", "list"], env, False, touch),
            ("pepperpy --version, no byte-code cache", [PEPPERPY, "--version"], uncached, False, None),
            ("pepperpy plugins list, no byte-code cache", [PEPPERPY, "plugins", "list"], uncached, False, None),
        ]
        rows = []
        for label, command, run_env, terminal, before in runs:
            cost = _median_run(command, repeat, run_env, root, terminal, before) - baseline
            rows.append((label, ms(cost)))
    table(f"command wall time above `python -c pass` ({ms(baseline)}), median of {repeat}", rows, ("command", "cost"))
    print("target: pepperpy --version and pepperpy plugins list < 150 ms above python -c pass")


def main() -> None:
    command_times()
