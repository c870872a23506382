"""keys.json under concurrent `pepperpy keys set`: real processes saving at once, and a real SIGKILL mid-save.

Every process keeps its key, the file ends 0600, and no temporary file is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys

import pytest

from pepperpy._config import read_keys, save_key

pytestmark = pytest.mark.integration

SAVER = """
import sys
from pathlib import Path
from pepperpy._config import save_key

sys.stdin.read()  # released all at once by the test closing every stdin
save_key(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
print("saved")
"""

# Holds the keys lock as save_key does, writes a temporary as save_key names it, then waits to be killed.
KILLED_MID_SAVE = """
import sys, time
from pathlib import Path
from pepperpy._config import KEYS_LOCK_FILE, KEYS_LOCK_TIMEOUT_S
from pepperpy._filelock import file_lock

home = Path(sys.argv[1])
with file_lock(home / KEYS_LOCK_FILE, KEYS_LOCK_TIMEOUT_S):
    (home / ".keys.json.feedfacecafebeef.tmp").write_text('{"HALF": "wri')
    print("holding", flush=True)
    time.sleep(600)
"""


def test_sixteen_processes_saving_at_once_keep_all_sixteen_keys(tmp_path):
    home = tmp_path / "home"
    (home).mkdir()
    (home / "keys.json").write_text(json.dumps({"EXISTING_KEY": "existing-value"}))
    (home / "keys.json").chmod(0o644)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SAVER, str(home), f"KEY_{index}", f"value-{index:02d}-secret"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for index in range(16)
    ]
    for process in processes:
        process.stdin.close()
    outcomes = [(process.wait(timeout=120), process.stdout.read(), process.stderr.read()) for process in processes]
    for process in processes:
        process.stdout.close()
        process.stderr.close()
    assert all(code == 0 and out.strip() == "saved" for code, out, _ in outcomes), [err for _, _, err in outcomes]
    expected = {f"KEY_{index}": f"value-{index:02d}-secret" for index in range(16)} | {"EXISTING_KEY": "existing-value"}
    assert read_keys(home) == expected
    assert stat.S_IMODE((home / "keys.json").stat().st_mode) == 0o600
    assert sorted(os.listdir(home)) == ["keys.json", "keys.json.lock"]


def test_a_save_killed_while_holding_the_lock_blocks_no_one_and_its_temporary_goes(tmp_path):
    home = tmp_path / "home"
    save_key(home, "OLD_KEY", "old-value")
    holder = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_SAVE, str(home)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding", holder.stderr.read()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        holder.stdout.close()
        holder.stderr.close()
    assert (home / ".keys.json.feedfacecafebeef.tmp").exists(), "the kill left its temporary"
    save_key(home, "NEW_KEY", "new-value")
    assert read_keys(home) == {"OLD_KEY": "old-value", "NEW_KEY": "new-value"}
    assert sorted(os.listdir(home)) == ["keys.json", "keys.json.lock"]
    assert stat.S_IMODE((home / "keys.json").stat().st_mode) == 0o600
