"""Failures at the edges become PepperPy errors naming the file or setting and saying what to do.

Plugin files in other encodings, an unwritable home while installing or saving a key,
and the ``pepperpy`` command reporting those errors (and shadowed plugins) instead of a traceback.
"""

from __future__ import annotations

import codecs
import io
import json
import os
import sys
from pathlib import Path

import pytest

from pepperpy import _install, cli
from pepperpy._config import save_key
from pepperpy.errors import ConfigError, PluginInstallError, PluginManifestError
from pepperpy.plugin_manager import PluginManager
from tests.conftest import manifest_for

NON_UTF8 = {
    "utf-16-with-bom": lambda text: text.encode("utf-16"),
    "utf-16-le-without-bom": lambda text: text.encode("utf-16-le"),
    "utf-16-be-without-bom": lambda text: text.encode("utf-16-be"),
    "latin-1": lambda text: text.encode("latin-1"),
}


@pytest.fixture
def unwritable_home(tmp_path: Path):
    """A home nobody can create files in. Root ignores chmod, so then the home lies under a regular file."""
    if os.geteuid() == 0:
        (tmp_path / "afile").write_text("a file, not a folder\n")
        yield tmp_path / "afile" / "home"
        return
    home = tmp_path / "read-only-home"
    home.mkdir()
    home.chmod(0o500)
    try:
        yield home
    finally:
        home.chmod(0o700)


# -- plugin.json and requirements.txt encodings ---------------------------------------


def test_manifest_with_a_utf8_byte_order_mark_is_accepted(manager, make_plugin):
    folder = make_plugin("bommed", description="Café")
    text = json.dumps(manifest_for("bommed", description="Café"), ensure_ascii=False)
    (folder / "plugin.json").write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    assert manager.create_provider("llm", "bommed").name == "bommed"
    assert manager.plugins["llm/bommed"].manifest.description == "Café"
    assert manager.broken == []


@pytest.mark.parametrize("encode", NON_UTF8.values(), ids=NON_UTF8.keys())
def test_manifest_not_in_utf8_is_broken_naming_the_file(manager, make_plugin, encode):
    make_plugin("good")
    folder = make_plugin("encoded")
    text = json.dumps(manifest_for("encoded", description="Café"), ensure_ascii=False)
    (folder / "plugin.json").write_bytes(encode(text))
    manager.discover()
    (broken,) = manager.broken
    assert broken.path == folder.resolve()
    assert str(folder / "plugin.json") in broken.problem and "save it as UTF-8" in broken.problem
    assert "llm/encoded" not in manager.plugins
    assert manager.create_provider("llm", "good").name == "good"


def test_requirements_with_a_utf8_byte_order_mark_are_accepted(manager, make_plugin):
    folder = make_plugin("bommed")
    (folder / "requirements.txt").write_bytes(codecs.BOM_UTF8 + "pydantic>=2  # déjà installed\n".encode())
    requirements = _install.parse_requirements_file(folder / "requirements.txt")
    assert [str(r) for r in requirements] == ["pydantic>=2"]
    assert manager.create_provider("llm", "bommed").name == "bommed"


@pytest.mark.parametrize("encode", NON_UTF8.values(), ids=NON_UTF8.keys())
def test_requirements_not_in_utf8_fail_on_use_naming_the_file(manager, make_plugin, encode):
    folder = make_plugin("encoded")
    make_plugin("good")
    (folder / "requirements.txt").write_bytes(encode("pydantic>=2  # déjà installed\n"))
    with pytest.raises(PluginManifestError) as raised:
        manager.create_provider("llm", "encoded")
    message = str(raised.value)
    assert str(folder / "requirements.txt") in message and "save it as UTF-8" in message
    assert manager.broken == [], "the plugin.json is fine: the error comes when the plugin is used"
    assert manager.create_provider("llm", "good").name == "good"


def test_latin1_requirements_name_the_line(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_bytes("httpx\n# Müller's fork\n".encode("latin-1"))
    with pytest.raises(PluginManifestError, match=r"requirements\.txt: line 2 is not UTF-8 \(byte 0xfc"):
        _install.parse_requirements_file(path)


# -- an unwritable home -----------------------------------------------------------------


def test_installing_into_an_unwritable_home_names_the_path_and_leaves_nothing(make_plugin, tmp_path, unwritable_home):
    """The home refuses the env dir before uv runs, so nothing is downloaded.

    A full disk (ENOSPC) takes the same path: any OSError while creating the lock, the
    staging folder or the stamp is wrapped by ``PluginManager.ensure_requirements``.
    No small filesystem can be mounted here to raise a real ENOSPC, so only this case is tested.
    """
    make_plugin("unidecoder", files={"requirements.txt": "pepperpy-test-never-installed==1.0\n"})  # never importable
    make_plugin("plain")
    manager = PluginManager(search_paths=[tmp_path / "plugins"], home=unwritable_home)
    with pytest.raises(PluginInstallError) as raised:
        manager.create_provider("llm", "unidecoder")
    message = str(raised.value)
    assert "llm/unidecoder" in message and str(unwritable_home / "envs") in message
    assert "PEPPERPY_HOME" in message
    assert not (unwritable_home / "envs").exists(), "no half-installed env dir"
    assert manager.create_provider("llm", "plain").name == "plain"


def test_saving_a_key_in_an_unwritable_home_is_a_config_error(unwritable_home):
    with pytest.raises(ConfigError) as raised:
        save_key(unwritable_home, "X_API_KEY", "secret-value")
    message = str(raised.value)
    assert str(unwritable_home / "keys.json") in message and "X_API_KEY environment variable" in message
    assert "secret-value" not in message


# -- the pepperpy command ------------------------------------------------------------------


@pytest.fixture
def fresh_instance(monkeypatch):
    """``PluginManager.instance()`` is a process singleton: start from none, restore it afterwards."""
    monkeypatch.setattr(PluginManager, "_instance", None)


def run_cli(monkeypatch, capsys, argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_set_saves_in_the_managers_home(monkeypatch, capsys, tmp_path, fresh_instance):
    monkeypatch.setenv("PEPPERPY_HOME", str(tmp_path / "home"))
    code, out, _ = run_cli(monkeypatch, capsys, ["keys", "set", "--force", "X_API_KEY"], stdin="secret-value\n")
    assert code == 0 and str(tmp_path / "home" / "keys.json") in out
    assert json.loads((tmp_path / "home" / "keys.json").read_text()) == {"X_API_KEY": "secret-value"}


def test_keys_set_in_an_unwritable_home_prints_the_error_and_exits_1(monkeypatch, capsys, unwritable_home, fresh_instance):
    monkeypatch.setenv("PEPPERPY_HOME", str(unwritable_home))
    code, out, err = run_cli(monkeypatch, capsys, ["keys", "set", "--force", "X_API_KEY"], stdin="secret-value\n")
    assert code == 1 and out == ""
    assert err.startswith("pepperpy: cannot save X_API_KEY in ") and str(unwritable_home) in err
    assert "Traceback" not in err and "secret-value" not in err


def test_keys_set_without_a_value_exits_1(monkeypatch, capsys, tmp_path, fresh_instance):
    monkeypatch.setenv("PEPPERPY_HOME", str(tmp_path / "home"))
    code, _, err = run_cli(monkeypatch, capsys, ["keys", "set", "--force", "X_API_KEY"], stdin="\n")
    assert code == 1 and "no key given" in err
    assert not (tmp_path / "home" / "keys.json").exists()


def test_plugins_lists_shadowed_and_broken_plugins_with_their_paths(make_plugin, tmp_path, monkeypatch, capsys):
    low = make_plugin("twin", root=tmp_path / "low")
    high = make_plugin("twin", root=tmp_path / "high")
    broken = make_plugin("bad", root=tmp_path / "high", manifest="{not json")
    monkeypatch.setenv("PEPPERPY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PEPPERPY_PLUGIN_PATH", os.pathsep.join([str(tmp_path / "low"), str(tmp_path / "high")]))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(monkeypatch, capsys, ["plugins", "list"])
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines() if "llm/twin" in line.split()[:1]] == [["llm/twin", "0.1.0"]]
    assert f"  shadowed llm/twin at {low} by {high}" in out
    assert f"  broken {broken}: {broken / 'plugin.json'}: invalid JSON" in out


def test_plugins_through_main_uses_the_process_manager(monkeypatch, capsys, tmp_path, fresh_instance):
    monkeypatch.setenv("PEPPERPY_HOME", str(tmp_path / "home"))
    code, out, err = run_cli(monkeypatch, capsys, ["plugins"])
    assert code == 0 and err == ""
    assert "llm/mock" in out


FULL_DISK_SAVE = """
import json, os, sys
from pathlib import Path
from pepperpy._config import save_key
from pepperpy.errors import ConfigError

home = Path(sys.argv[1])
save_key(home, "OLD_KEY", "old-value")
with open(home / "filler", "wb", buffering=0) as filler:  # use up every block of the small filesystem
    try:
        while True:
            filler.write(b"x" * 4096)
    except OSError:
        pass
try:
    save_key(home, "X_KEY", "value")
    outcome = "saved"
except ConfigError as exc:
    outcome = str(exc)
print(json.dumps({"outcome": outcome, "files": sorted(os.listdir(home)), "keys": json.loads((home / "keys.json").read_text())}))
"""


def _run_on_a_full_filesystem(home: Path, script: str) -> dict:
    """Run ``script`` with ``home`` as a 64 KB tmpfs of its own (a user and mount namespace: no root needed)."""
    import shutil
    import subprocess

    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs util-linux's unshare to mount a small filesystem in a namespace")
    command = [unshare, "--user", "--map-root-user", "--mount", "sh", "-c",
               'mount -t tmpfs -o size=64k tmpfs "$1" && exec "$2" -c "$3" "$1"', "sh", str(home), sys.executable, script]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 and "mount" in done.stderr and "Traceback" not in done.stderr:
        pytest.skip(f"this machine does not allow mounting a tmpfs in a user namespace: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_saving_a_key_on_a_full_disk_is_a_config_error_and_leaves_no_temporary(tmp_path):
    """A full disk, for real: the home is a 64 KB tmpfs filled up before the save, so the kernel answers ENOSPC.

    The keys saved before stay as they were, and no temporary file is left in the home.
    """
    home = tmp_path / "home"
    home.mkdir()
    result = _run_on_a_full_filesystem(home, FULL_DISK_SAVE)
    assert result["outcome"].startswith(f"cannot save X_KEY in {home / 'keys.json'}: No space left on device")
    assert "PEPPERPY_HOME" in result["outcome"] and "value" not in result["outcome"].replace("old-value", "")
    assert result["files"] == ["filler", "keys.json", "keys.json.lock"], "no temporary file left behind"
    assert result["keys"] == {"OLD_KEY": "old-value"}


def test_a_plugin_folder_others_can_write_is_warned_about_at_discovery(manager, make_plugin):
    """A plugin folder is code: a world-writable folder or entry file lets any user change what PepperPy runs."""
    import os
    import warnings

    safe = make_plugin("safe")
    exposed = make_plugin("exposed")
    os.chmod(safe, 0o755)
    os.chmod(exposed, 0o777)
    os.chmod(exposed / "provider.py", 0o666)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manager.discover()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and f"plugin folder {exposed}:" in messages[0]
    assert str(exposed / "provider.py") in messages[0] and "chmod o-w" in messages[0]
    assert manager.create_provider("llm", "exposed").name == "exposed"  # a warning, not a refusal
