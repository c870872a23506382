"""Findings of a new user's first look at the safe-install features (issue 24): ``plugins audit --package`` also
searches the environment PepperPy runs from, and more. CLI commands run in subprocesses with PEPPERPY_HOME in
tmp_path; nothing here installs (no package index is reached)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pepperpy._paths import STAMP_FILE


def cli(home: Path, *arguments: str, plugin_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PEPPERPY_HOME": str(home)}
    if plugin_path is not None:
        env["PEPPERPY_PLUGIN_PATH"] = str(plugin_path)
    return subprocess.run([sys.executable, "-m", "pepperpy", *arguments], capture_output=True, text=True, env=env,
                          timeout=120, stdin=subprocess.DEVNULL)


def fake_env(home: Path, name: str, version: str, plugin: str = "llm-fake") -> Path:
    """A complete in-process plugin env as an install leaves it (stamped, one dist-info), with no record."""
    env = home / "envs" / f"{plugin}-0123456789ab"
    info = env / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
    (env / STAMP_FILE).write_text("0123456789ab")
    return env


def test_audit_package_reports_this_environment_with_its_site_folder(tmp_path):
    version = importlib.metadata.version("pytest")
    site = Path(str(importlib.metadata.distribution("pytest").locate_file(""))).resolve()
    found = cli(tmp_path, "plugins", "audit", "--package", f"pytest=={version}")
    assert found.returncode == 0, found.stderr
    rows = [line.split() for line in found.stdout.splitlines()[1:]]
    assert ["-", "this", "environment", "pytest", version, "-", "-", "-", "-", str(site)] in rows
    data = json.loads(cli(tmp_path, "plugins", "audit", "--json", "--package", "pytest").stdout)
    (entry,) = [e for e in data["envs"] if e["env"] == str(site)]
    assert entry["kind"] == "this environment" and entry["plugin"] is None
    assert [(d["name"], d["version"]) for d in entry["distributions"]] == [("pytest", version)]


def test_audit_package_exits_1_when_nothing_matches_anywhere(tmp_path):
    missing = cli(tmp_path, "plugins", "audit", "--package", "pepperpy-test-only-package")
    assert missing.returncode == 1
    assert missing.stdout == (f"no plugin env holds pepperpy-test-only-package (under {tmp_path / 'envs'}), nor the "
                              f"environment PepperPy runs from ({sys.prefix})\n")
    newer = cli(tmp_path, "plugins", "audit", "--json", "--package", "pytest>=1000")
    assert newer.returncode == 1 and json.loads(newer.stdout) == {"envs": []}


def test_audit_package_finds_a_plugin_env_and_the_plain_table_lists_only_plugin_envs(tmp_path):
    env = fake_env(tmp_path, "pepperpy-test-only-package", "1.0")
    found = cli(tmp_path, "plugins", "audit", "--package", "pepperpy_test_only_package==1.0")
    assert found.returncode == 0, found.stderr
    (row,) = [line.split() for line in found.stdout.splitlines()[1:]]
    assert row[:4] == ["llm/fake", "inprocess", "pepperpy-test-only-package", "1.0"] and row[-1] == env.name
    table = cli(tmp_path, "plugins", "audit")
    assert table.returncode == 0, table.stderr
    assert [line.split()[:2] for line in table.stdout.splitlines()[1:]] == [["llm/fake", "inprocess"]]
    assert cli(tmp_path, "plugins", "audit", "--package", "pepperpy-test-only-package==2").returncode == 1


def test_audit_takes_a_plugin_id_found_as_plugins_info_finds_it(tmp_path, make_plugin):
    """`plugins audit loader/csv` (or `audit csv`) lists only that plugin's envs; a typo gets "did you mean"."""
    make_plugin("loader_csv", category="loader", provider_name="csv")
    plugins = tmp_path / "plugins"
    fake_env(tmp_path, "pepperpy-test-only-package", "1.0")
    fake_env(tmp_path, "pepperpy-test-csv-package", "2.0", plugin="loader-csv")
    for asked in ("loader/csv", "csv"):
        table = cli(tmp_path, "plugins", "audit", asked, plugin_path=plugins)
        assert table.returncode == 0, table.stderr
        rows = [line.split()[:4] for line in table.stdout.splitlines()[1:]]
        assert rows == [["loader/csv", "inprocess", "pepperpy-test-csv-package", "2.0"]]
    typo = cli(tmp_path, "plugins", "audit", "cvs", plugin_path=plugins)
    assert typo.returncode == 1 and "did you mean loader/csv?" in typo.stderr, typo.stderr
    none = cli(tmp_path, "plugins", "audit", "llm/mock", plugin_path=plugins)
    assert none.returncode == 0 and none.stdout.startswith("no env of llm/mock is installed"), none.stderr
    held = cli(tmp_path, "plugins", "audit", "loader/csv", "--package", "pepperpy-test-only-package",
               plugin_path=plugins)
    assert held.returncode == 1 and "no env of loader/csv holding pepperpy-test-only-package" in held.stdout


HASH = "sha256:" + "ab" * 32
STALE = {"requirements.txt": "pepperpy-test-only-package==1.0\n",
         "requirements.lock": f"pepperpy-test-other-package==2.0 \\\n    --hash={HASH}\n"}
STALE_MESSAGE = ("does not match requirements.txt: requirements.txt asks for pepperpy-test-only-package==1.0, but the "
                 "lock does not list pepperpy-test-only-package")


def test_plugins_check_fails_a_stale_lock_without_installing(tmp_path, make_plugin):
    folder = make_plugin("stale", files=STALE)
    checked = cli(tmp_path / "home", "plugins", "check", str(folder))
    assert checked.returncode == 1
    lock = folder / "requirements.lock"
    assert f"FAIL llm/stale ({folder}): plugin llm/stale: {lock} {STALE_MESSAGE}" in checked.stdout
    assert not (tmp_path / "home" / "envs").exists()


def test_doctor_reports_a_stale_lock(tmp_path, make_plugin):
    folder = make_plugin("stale", files=STALE)
    report = cli(tmp_path / "home", "doctor", plugin_path=folder.parent)
    assert f"llm/stale ({folder}): plugin llm/stale: {folder / 'requirements.lock'} {STALE_MESSAGE}" in report.stdout
    assert not (tmp_path / "home" / "envs").exists()


@pytest.mark.parametrize(("allow", "named"), [
    ({"openai": ["openai"]}, "has the key 'openai', which is not a plugin id; write the id as category/name"),
    ({"llm/open ai": ["openai"]}, "has the key 'llm/open ai', which is not a plugin id"),
    ({"llm/openai": ["openai>=2"]}, "lists 'openai>=2' for llm/openai, which is not a package name; write names only"),
    ({"llm/openai": [""]}, "lists '' for llm/openai, which is not a package name"),
    ({"llm/openai": ["open ai"]}, "lists 'open ai' for llm/openai, which is not a package name"),
])
def test_allow_newer_keys_must_be_plugin_ids_and_values_package_names(tmp_path, allow, named):
    from pepperpy._cooldown import read_settings
    from pepperpy.errors import ConfigError

    (tmp_path / "install.json").write_text(json.dumps({"allow_newer": allow}))
    with pytest.raises(ConfigError) as caught:
        read_settings(tmp_path)
    assert str(caught.value).startswith(f'{tmp_path / "install.json"}: "allow_newer" ')
    assert named in str(caught.value)


def test_allow_newer_accepts_a_well_formed_id_of_a_plugin_not_on_the_path(tmp_path):
    from pepperpy._cooldown import cooldown_for

    from pepperpy.errors import ConfigError

    (tmp_path / "install.json").write_text(json.dumps({"allow_newer": {"vector/not-here_yet": ["Foo.Bar_baz"]}}))
    assert cooldown_for(tmp_path, "vector/not-here_yet").allowed == ("foo-bar-baz",)
    (tmp_path / "install.json").write_text(json.dumps({"allow_newer": {"not-here_yet": ["Foo.Bar_baz"]}}))
    with pytest.raises(ConfigError, match="not a plugin id"):
        cooldown_for(tmp_path, "vector/not-here_yet")


def test_the_cooldown_refusal_shows_the_plugins_whole_allow_newer_list(tmp_path):
    from pepperpy._cooldown import cooldown_for, explain

    said = ("hint: `pp-young` was filtered by `exclude-newer` to only include packages uploaded before "
            "2026-11-30T00:00:00Z. The requested version, v2.0, was published at 2026-12-06T22:54:19Z. ")
    (tmp_path / "install.json").write_text(json.dumps({"allow_newer": {"llm/x": ["Zeta_Pkg", "alpha"],
                                                                       "llm/y": ["other"]}}))
    message = explain(said, "llm/x", cooldown_for(tmp_path, "llm/x"), tmp_path)
    assert message is not None
    assert (f'allow newer pp-young for llm/x only, in {tmp_path / "install.json"}: '
            '{"allow_newer": {"llm/x": ["Zeta_Pkg", "alpha", "pp-young"]}}') in message


def test_one_unit_is_said_in_the_singular(tmp_path):
    from datetime import UTC, datetime

    from pepperpy._cooldown import Cooldown, explain, parse_duration

    assert [parse_duration(t, "X") for t in ("1h", "1", "1w", "2h")] == ["1 hour", "1 day", "1 week", "2 hours"]
    said = ("hint: `pp-young` was filtered by `exclude-newer` to only include packages uploaded before "
            "2026-11-30T00:00:00Z. The requested version, v2.0, was published at 2026-12-06T22:54:19Z. ")
    now = datetime(2026, 12, 6, 22, 55, 0, tzinfo=UTC)
    message = explain(said, "llm/x", Cooldown("1 hour", "X"), tmp_path, now=now)
    assert message is not None and message.startswith("plugin llm/x needs pp-young 2.0 (uploaded 1 minute ago), "
                                                       "younger than the install cooldown of 1 hour (X)")


def test_doctor_says_what_an_off_cooldown_and_never_mode_mean(tmp_path, monkeypatch):
    monkeypatch.setenv("PEPPERPY_INSTALL", "never")
    monkeypatch.setenv("PEPPERPY_INSTALL_COOLDOWN", "0")
    lines = cli(tmp_path / "home", "doctor").stdout.splitlines()
    assert "  installs  never: nothing is installed at run time, only by `pepperpy plugins install` " \
           "(PEPPERPY_INSTALL)" in lines
    assert "  cooldown  off (PEPPERPY_INSTALL_COOLDOWN): installs take releases of any age" in lines
    assert not [line for line in lines if "ignore younger" in line or "install on first use" in line
                and "unset PEPPERPY_INSTALL" not in line]
    local = lines[lines.index("local model (llm/local)") + 1]
    assert local.startswith("  not installed, and PEPPERPY_INSTALL=never: install it beforehand with `") \
        and local.endswith("pepperpy plugins install llm/local`")


@pytest.mark.parametrize("option", ["--hash=sha256:zz", "--hash=sha256:" + "a" * 63, "--hash=md5:" + "a" * 32,
                                    "--hash=", "--hash sha256:zz"])
def test_a_malformed_hash_in_a_lock_is_named_as_such(tmp_path, option):
    from pepperpy._lockfile import read_lock
    from pepperpy.errors import PluginManifestError

    path = tmp_path / "requirements.lock"
    path.write_text(f"# header\ntext-unidecode==1.3 --hash={HASH} {option}\n")
    with pytest.raises(PluginManifestError) as caught:
        read_lock(path, "llm/x")
    assert str(caught.value).startswith(f"plugin llm/x: {path}:2: the hash ")
    assert "is malformed: expected --hash=sha256:<64 hex digits>; write the lock again with `pepperpy plugins " \
           "lock llm/x`" in str(caught.value)


def test_a_malformed_hash_in_requirements_txt_is_named_as_such(tmp_path):
    from pepperpy._install import parse_requirements_file
    from pepperpy.errors import PluginManifestError

    path = tmp_path / "requirements.txt"
    path.write_text("httpx\npkg==1.3 --hash=sha256:zz\n")
    with pytest.raises(PluginManifestError) as caught:
        parse_requirements_file(path, plugin_id="llm/x")
    assert str(caught.value) == (f"plugin llm/x: {path}:2: the hash 'sha256:zz' is malformed: expected "
                                 "--hash=sha256:<64 hex digits>: 'pkg==1.3 --hash=sha256:zz'; write the hash uv pip "
                                 "compile --generate-hashes gives, or no --hash")
    path.write_text(f"pkg==1.3 --hash={HASH}\n")
    assert [str(r) for r in parse_requirements_file(path, plugin_id="llm/x")] == ["pkg==1.3"]
