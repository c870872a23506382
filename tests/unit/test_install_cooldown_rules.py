"""The cooldown's settings and uv's "filtered by exclude-newer" hint (pepperpy/_cooldown.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pepperpy._cooldown import Cooldown, cooldown_for, explain, parse_duration, unchecked_sources
from pepperpy.errors import ConfigError

# uv 0.13's words when only a release younger than the cutoff meets the requirement
UV_SAID = """error: No solution found when resolving dependencies
  cause: Because only pp-young==1.0 is available and you require pp-young>=2, we can conclude that your requirements are unsatisfiable.

hint: `pp-young` was filtered by `exclude-newer` to only include packages uploaded before 2026-11-29T23:54:22.642202535Z. The latest version satisfying the requirement is v2.0, published at 2026-12-06T22:54:19.576Z. Consider using `exclude-newer-package` to override the cutoff for this package.
"""  # noqa: E501


@pytest.mark.parametrize(("text", "uv"), [
    ("7", "7 days"), ("7d", "7 days"), (" 3 days ", "3 days"), ("1 day", "1 day"), ("12h", "12 hours"), ("1h", "1 hour"),
    ("2w", "2 weeks"), ("2 Weeks", "2 weeks"), ("1 weeks", "1 week"), ("0", ""), ("0d", ""),
])
def test_durations_are_given_to_uv_in_its_words(text, uv):
    assert parse_duration(text, "X") == uv


@pytest.mark.parametrize("text", ["", "7 months", "-1", "1.5d", "P7D", "7d; rm -rf /", "soon"])
def test_other_durations_are_refused_naming_the_setting(text):
    with pytest.raises(ConfigError, match=r"PEPPERPY_INSTALL_COOLDOWN=.* is not a cooldown: write a number of days"):
        parse_duration(text, "PEPPERPY_INSTALL_COOLDOWN")


def test_the_default_is_seven_days_and_the_variable_beats_the_home_file(tmp_path, monkeypatch):
    monkeypatch.delenv("PEPPERPY_INSTALL_COOLDOWN", raising=False)
    assert cooldown_for(tmp_path, "llm/x").uv_options() == ["--exclude-newer", "7 days"]
    (tmp_path / "install.json").write_text(json.dumps({"cooldown": "3", "allow_newer": {"llm/x": ["Foo_Bar"]}}))
    assert cooldown_for(tmp_path, "llm/x").uv_options() == [
        "--exclude-newer", "3 days", "--exclude-newer-package", "foo-bar=false"
    ]
    assert cooldown_for(tmp_path, "llm/y").uv_options() == ["--exclude-newer", "3 days"]
    monkeypatch.setenv("PEPPERPY_INSTALL_COOLDOWN", "0")
    assert cooldown_for(tmp_path, "llm/x").uv_options() == []
    assert cooldown_for(tmp_path, "llm/x").describe() == "off (PEPPERPY_INSTALL_COOLDOWN)"


@pytest.mark.parametrize("content", ["[1]", "{", '{"allow_newer": ["x"]}', '{"allow_newer": {"llm/x": "pkg"}}'])
def test_a_bad_home_file_is_refused_by_name(tmp_path, content, monkeypatch):
    monkeypatch.delenv("PEPPERPY_INSTALL_COOLDOWN", raising=False)
    (tmp_path / "install.json").write_text(content)
    with pytest.raises(ConfigError, match="install.json"):
        cooldown_for(tmp_path, "llm/x")


def test_uvs_hint_becomes_an_error_naming_package_version_age_and_the_ways_to_allow_it(tmp_path):
    now = datetime(2026, 12, 9, 0, 0, tzinfo=UTC)
    message = explain(UV_SAID, "llm/x", Cooldown("7 days", "the default"), tmp_path, now=now)
    assert message is not None
    assert message.startswith("plugin llm/x needs pp-young 2.0 (uploaded 2 days ago), younger than the install "
                              "cooldown of 7 days (the default)")
    assert f'in {tmp_path / "install.json"}: {{"allow_newer": {{"llm/x": ["pp-young"]}}}}' in message
    assert "PEPPERPY_INSTALL_COOLDOWN=1d (0 turns it off)" in message
    assert "(`pepperpy cooldown allow llm/x pp-young` writes it)" in message and "`pepperpy cooldown set 1d`" in message


def test_other_failures_and_an_off_cooldown_are_not_explained_as_the_cooldown(tmp_path):
    assert explain("error: No solution found: pp-young>=9 does not exist", "llm/x", Cooldown("7 days", "d"),
                   tmp_path) is None
    assert explain(UV_SAID, "llm/x", Cooldown("", "PEPPERPY_INSTALL_COOLDOWN"), tmp_path) is None


def test_find_links_is_named_as_a_source_the_cooldown_cannot_check(monkeypatch):
    monkeypatch.setenv("UV_FIND_LINKS", "/opt/wheels")
    assert "/opt/wheels" in unchecked_sources("llm/x", Cooldown("7 days", "the default"))
    assert unchecked_sources("llm/x", Cooldown("", "PEPPERPY_INSTALL_COOLDOWN")) is None
    monkeypatch.delenv("UV_FIND_LINKS")
    assert unchecked_sources("llm/x", Cooldown("7 days", "the default")) is None


def test_a_release_without_an_upload_time_is_said_to_come_from_an_index_without_them(tmp_path):
    said = UV_SAID.replace(", published at 2026-12-06T22:54:19.576Z", "")
    message = explain(said, "llm/x", Cooldown("7 days", "the default"), tmp_path)
    assert message is not None and message.startswith(
        "plugin llm/x needs pp-young 2.0, but the package index gives no upload time for it (an HTML-only index?)"
    )
    assert '{"allow_newer": {"llm/x": ["pp-young"]}}' in message


def test_uvs_hint_for_a_pinned_version_is_explained_too(tmp_path):
    said = ("hint: `idna` was filtered by `exclude-newer` to only include packages uploaded before "
            "2026-11-30T00:41:47.5774102Z. The requested version, v3.21, was published at 2026-12-04T01:41:55Z. "
            "Consider using `exclude-newer-package` to override the cutoff for this package.")
    now = datetime(2026, 12, 7, 1, 41, 55, tzinfo=UTC)
    message = explain(said, "llm/x", Cooldown("7 days", "the default"), tmp_path, now=now)
    assert message is not None and message.startswith("plugin llm/x needs idna 3.21 (uploaded 3 days ago)")


def test_allowing_adds_exemptions_by_canonical_name():
    cooldown = Cooldown("7 days", "the default", ("b",)).allowing(["A_x", "b"])
    assert cooldown.uv_options()[2:] == ["--exclude-newer-package", "a-x=false", "--exclude-newer-package", "b=false"]
