"""The suite's own limits: a hung test ends the run with every thread's stack instead of stalling CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_suite_has_a_per_test_timeout(pytestconfig):
    assert pytestconfig.pluginmanager.hasplugin("timeout"), "pytest-timeout is not installed (the test extra)"
    assert float(pytestconfig.getini("timeout")) > 0
    assert pytestconfig.getini("timeout_method") == "thread"


def test_a_hung_test_ends_the_run_with_its_stack(tmp_path):
    (tmp_path / "test_hang.py").write_text("import threading\n\ndef test_hangs():\n    threading.Event().wait()\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(tmp_path), "-o", "timeout=1", str(tmp_path / "test_hang.py")],
        capture_output=True, text=True, timeout=120,
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "Timeout" in output and "Stack of MainThread" in output, output
    assert 'test_hang.py", line 4, in test_hangs' in output, output
