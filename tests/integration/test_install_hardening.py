"""Installs that clean up after themselves: real uv installs of text-unidecode into tmp homes.

A real child process installs a plugin and is killed with SIGKILL at several moments; the
tests then look in /proc for any uv (or watchdog) it left running and check that the next
install removes the folder it left. The one stand-in is a local "package index" that accepts
connections and never answers: it holds uv mid-install, which no real index does on demand.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REQUIREMENT = "text-unidecode==1.3"
WAIT_S = 120  # how long to wait for a process to appear or go away before failing

CHILD = textwrap.dedent(
    '''
    import json, os, signal, sys
    from pepperpy import _install
    from pepperpy.errors import PepperPyError
    from pepperpy.plugin_manager import PluginManager

    root, home, name, mode = sys.argv[1:5]

    def stop_here(where):
        print(json.dumps({"paused": where}), flush=True)
        signal.pause()  # until the test kills this process

    if mode == "before-uv":
        _install._uv_binary = lambda: stop_here("before-uv")
    elif mode == "before-rename":
        real_rename = os.rename
        def rename(source, target):
            if ".partial-" in str(source):
                stop_here("before-rename")
            return real_rename(source, target)
        os.rename = rename
    elif mode == "umask-077":
        os.umask(0o077)
    try:
        PluginManager(search_paths=[root], home=home).create_provider("llm", name)
    except PepperPyError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}), flush=True)
        sys.exit(3)
    import text_unidecode
    print(json.dumps({"imported": text_unidecode.__file__}), flush=True)
    '''
)


@pytest.fixture
def plugin_root(tmp_path, make_plugin) -> Path:
    for name in ("first", "second", "third"):
        make_plugin(name, files={"requirements.txt": f"{REQUIREMENT}\n"})
    return tmp_path / "plugins"


def child_command(plugin_root: Path, home: Path, name: str = "first", mode: str = "run") -> list[str]:
    return [sys.executable, "-c", CHILD, str(plugin_root), str(home), name, mode]


def child_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **extra}


def run_child(command: list[str], **extra: str) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(**extra), timeout=300)
    lines = done.stdout.strip().splitlines()
    assert lines, f"the child printed nothing (exit {done.returncode}): {done.stderr}"
    return json.loads(lines[-1])


def env_of(home: Path, plugin: str) -> Path:
    (env,) = [p for p in (home / "envs").iterdir() if p.is_dir() and p.name.startswith(f"llm-{plugin}-")]
    return env


def leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "envs").iterdir() if ".partial-" in p.name)


# -- processes, from /proc --------------------------------------------------------


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p in all_pids() if parent_of(p) == parent]
        found += children
        frontier += children
    return found


def running_with(text: str) -> list[int]:
    return [p for p in all_pids() if text in cmdline(p) and alive(p) and p != os.getpid()]


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting {WAIT_S}s for {what}")
        time.sleep(0.05)


# -- the stalled index ------------------------------------------------------------


@pytest.fixture
def stalled_index() -> Iterator[tuple[str, socket.socket, list[socket.socket]]]:
    """A local index URL whose server accepts connections and never answers (so uv waits mid-install).

    Yields the URL and a list that fills with the accepted connections; they stay open until the test ends.
    """
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(WAIT_S)
    accepted: list[socket.socket] = []
    yield f"http://127.0.0.1:{server.getsockname()[1]}/simple", server, accepted
    for connection in accepted:
        connection.close()
    server.close()


# -- SIGKILL at several moments -----------------------------------------------------


@pytest.mark.parametrize("moment", ["before-uv", "during-uv", "before-rename"])
def test_kill_9_leaves_no_uv_running_and_the_next_install_cleans_up(moment, plugin_root, tmp_path, stalled_index):
    home = tmp_path / "home"
    extra: dict[str, str] = {}
    if moment == "during-uv":
        url, server, accepted = stalled_index
        extra = {"UV_DEFAULT_INDEX": url, "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_HTTP_TIMEOUT": "600"}
    mode = "run" if moment == "during-uv" else moment
    installer = subprocess.Popen(
        child_command(plugin_root, home, mode=mode), stdout=subprocess.PIPE, text=True, env=child_env(**extra)
    )
    try:
        if moment == "during-uv":
            accepted.append(server.accept()[0])  # uv asked the index: it is running now, waiting for an answer
            family = descendants(installer.pid)
            assert any(" pip install " in cmdline(p) and ".partial-" in cmdline(p) for p in family), [
                cmdline(p) for p in family
            ]
        else:
            assert json.loads(installer.stdout.readline()) == {"paused": moment}
            family = descendants(installer.pid)
        (staging,) = leftovers(home)
        os.kill(installer.pid, signal.SIGKILL)
        installer.wait()
    finally:
        if installer.poll() is None:
            installer.kill()
            installer.wait()
    wait_until(lambda: not any(alive(p) for p in family), "the killed installer's uv and watchdog to exit")
    wait_until(lambda: not running_with(staging), f"every process working in {staging} to exit")
    assert leftovers(home) == [staging], "the killed install should have left its folder (or this test is moot)"

    assert "imported" in run_child(child_command(plugin_root, home))
    assert leftovers(home) == []
    assert [p.is_dir() for p in (home / "envs").iterdir()].count(True) == 1 and env_of(home, "first")


# -- pepperpy plugins clean ---------------------------------------------------------


def pepperpy_command(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The real ``pepperpy`` command line, without a terminal (stdin is not a TTY)."""
    main = "import sys; from pepperpy.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", main, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
        env=child_env(PEPPERPY_HOME=str(home)), timeout=300,
    )


def test_plugins_clean_removes_old_envs_and_dead_installs_but_not_fresh_or_running_ones(plugin_root, tmp_path):
    from pepperpy import _install
    from pepperpy.cli.clean import freed_bytes

    home = tmp_path / "home"
    for name in ("first", "second"):
        assert "imported" in run_child(child_command(plugin_root, home, name))
    envs = home / "envs"
    old, fresh = env_of(home, "first"), env_of(home, "second")
    aged = time.time() - 40 * 86400
    os.utime(old / _install.LAST_USED_FILE, (aged, aged))
    installing = subprocess.Popen(child_command(plugin_root, home, "third", "before-uv"), stdout=subprocess.PIPE)
    try:
        assert json.loads(installing.stdout.readline()) == {"paused": "before-uv"}  # it holds its lock
        (staging,) = leftovers(home)
        listed = pepperpy_command(home, "plugins", "clean", "--dry-run")
        assert listed.returncode == 0, listed.stderr
        assert old.name in listed.stdout and "unused for 40 days" in listed.stdout
        assert f"kept {staging}: its lock is held" in listed.stdout and old.is_dir()
        expected = freed_bytes(old)
        done = pepperpy_command(home, "plugins", "clean")  # no --yes: without a terminal it does not ask
        assert done.returncode == 0, done.stderr
        assert f"removed 1 folder from {envs}: " in done.stdout and f"({expected} bytes) freed" in done.stdout
        assert not old.exists() and fresh.is_dir() and (envs / staging).is_dir()
    finally:
        installing.kill()
        installing.wait()
    staging_bytes = freed_bytes(envs / staging)
    done = pepperpy_command(home, "plugins", "clean")  # the killed install no longer holds the lock
    assert staging in done.stdout and "interrupted install" in done.stdout
    assert f"({staging_bytes} bytes) freed" in done.stdout
    assert leftovers(home) == [] and fresh.is_dir()
    assert "imported" in run_child(child_command(plugin_root, home, "first"))  # a removed env comes back on use


# -- modes ------------------------------------------------------------------------


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder every user can traverse (pytest's tmp_path is private to its user)."""
    folder = Path(tempfile.mkdtemp(prefix="pepperpy-shared-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_envs_are_readable_by_other_users_whatever_the_umask(plugin_root, shared_tmp):
    home = shared_tmp / "home"
    home.mkdir(mode=0o755)
    assert "imported" in run_child(child_command(plugin_root, home, mode="umask-077"))
    envs, env = home / "envs", env_of(home, "first")
    modes = {str(p.relative_to(home)): stat.S_IMODE(p.lstat().st_mode) for p in [envs, env, *env.rglob("*")]}
    wrong = {
        path: oct(mode) for path, mode in modes.items()
        if mode != (0o755 if (home / path).is_dir() else 0o644) and not (home / path).is_symlink()
    }
    assert wrong == {}
    assert any(name.endswith(".pyc") for name in modes), "uv should have compiled the bytecode (--compile-bytecode)"
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return
    reader = f"import sys; sys.path.insert(0, {str(env)!r}); import text_unidecode; print(text_unidecode.unidecode('é'))"
    as_nobody = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-I", "-c", reader],
        capture_output=True, text=True, cwd=shared_tmp,
    )
    assert (as_nobody.returncode, as_nobody.stdout.strip()) == (0, "e"), as_nobody.stderr


# -- an unwritable home -----------------------------------------------------------


def in_namespace(setup: str, home: Path, commands: list[list[str]]) -> list[dict]:
    """Run ``commands`` in a private mount namespace after ``setup`` (shell, $H is the home); root only."""
    script = setup + "\n" + "\n".join(shlex.join(command) + " || true" for command in commands)
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-ec", script],
        capture_output=True, text=True, env=child_env(H=str(home)), timeout=600,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(commands), f"exit {done.returncode}: {done.stdout}\n{done.stderr}"
    return lines


def needs_mounts() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a read-only or full file system in a private namespace")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.decode().strip()}")


def test_read_only_home_fails_clearly_and_installed_plugins_keep_working(plugin_root, tmp_path):
    """As root a chmod does not stop writes, so the home is bind-mounted read-only in a private mount namespace;
    as another user the home is chmod-ed read-only instead."""
    home = tmp_path / "home"
    assert "imported" in run_child(child_command(plugin_root, home, "first"))
    commands = [child_command(plugin_root, home, "first"), child_command(plugin_root, home, "second")]
    if os.geteuid() == 0:
        needs_mounts()
        first, second = in_namespace('mount --bind "$H" "$H"; mount -o remount,ro,bind "$H" "$H"', home, commands)
        problem = "is on a read-only file system"
    else:
        writable = [home, home / "envs"]
        for folder in writable:
            folder.chmod(0o555)
        try:
            first, second = (run_child(command) for command in commands)
        finally:
            for folder in writable:
                folder.chmod(0o755)
        problem = "this user may not write in"
    assert "imported" in first
    assert second["error"] == "PluginInstallError"
    assert "llm/second" in second["message"] and str(home) in second["message"]
    assert problem in second["message"] and "PEPPERPY_HOME" in second["message"]


def test_full_disk_fails_clearly_and_installed_plugins_keep_working(plugin_root, tmp_path):
    """The home is a small tmpfs (in a private mount namespace) holding an installed env, then filled up."""
    needs_mounts()
    installed = tmp_path / "installed-home"
    assert "imported" in run_child(child_command(plugin_root, installed, "first"))
    home = tmp_path / "home"
    home.mkdir()
    setup = (
        f'mount -t tmpfs -o size=4m tmpfs "$H"; cp -a {shlex.quote(str(installed))}/. "$H"/; '
        'dd if=/dev/zero of="$H/filler" bs=4k 2>/dev/null || true'
    )
    commands = [child_command(plugin_root, home, "first"), child_command(plugin_root, home, "second")]
    first, second = in_namespace(setup, home, commands)
    assert "imported" in first
    assert second["error"] == "PluginInstallError"
    assert "llm/second" in second["message"] and f"the disk holding {home} is full" in second["message"]
