"""Running the real `pepperpy` command in a subprocess, for the command's tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def default_sigint() -> None:
    """For ``preexec_fn`` (or a forked child): SIGINT at its default action, so that the Python started next
    installs its KeyboardInterrupt handler even when this test run ignores SIGINT (a shell script's ``cmd &``
    or ``nohup`` starts it so, and an ignored signal stays ignored across exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def environment(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """``home`` as PEPPERPY_HOME; no default provider, plugin path or OpenAI key from the caller's shell; ``extra``."""
    env = {**os.environ, "PEPPERPY_HOME": str(home), "TERM": "dumb"}
    for name in ("PEPPERPY_LLM", "PEPPERPY_PLUGIN_PATH", "OPENAI_API_KEY"):
        env.pop(name, None)
    return {**env, **(extra or {})}


def run_pepperpy(
    home: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """``python -m pepperpy ARGS`` with ``stdin`` piped, in ``cwd`` (default: ``home``'s parent, no ./plugins)."""
    home.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "pepperpy", *args], input=stdin, capture_output=True, text=True,
        env=environment(home, env), cwd=cwd or home.parent, timeout=600,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    """The command's output, once it is known to have succeeded."""
    assert result.returncode == 0, result.stderr
    return result.stdout
