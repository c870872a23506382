"""Plugin environments (pepperpy/_envs.py): one place names ``<home>/envs/`` folders and answers "needs install?"."""

from __future__ import annotations

import pytest

from pepperpy import _envs, _index, _install
from pepperpy._isolation import env


@pytest.mark.parametrize(
    ("isolated", "has_requirements", "stamped", "provided", "needed"),
    [
        (False, False, False, False, False),  # nothing to install
        (False, True, True, False, False),  # its env is complete
        (False, True, False, True, False),  # the running environment has them
        (False, True, False, False, True),
        (True, False, False, True, True),  # a worker's venv is made even without requirements
        (True, True, True, False, False),
    ],
)
def test_needs_install(tmp_path, isolated, has_requirements, stamped, provided, needed):
    folder = _envs.env_folder(tmp_path, "llm/demo", "0123456789ab")
    assert folder == tmp_path / "envs" / "llm-demo-0123456789ab"
    if stamped:
        folder.mkdir(parents=True)
        (folder / _install.STAMP_FILE).write_text("0123456789ab")
    asked = _envs.needs_install(folder, "0123456789ab", isolated=isolated, has_requirements=has_requirements,
                                provided=lambda: provided)
    assert asked is needed


def test_the_manager_the_index_and_both_env_kinds_name_the_same_folders(manager, make_plugin, tmp_path):
    make_plugin("needy", files={"requirements.txt": "pepperpy-test-only-package==1.0\n"})
    make_plugin("walled", isolation="process")
    listing = _index.load(manager.home, [tmp_path / "plugins"]).plugins
    needy = manager.requirement_set(manager.discover()["llm/needy"])
    walled = manager.requirement_set(manager.discover()["llm/walled"])
    assert listing["llm/needy"].env_dir(manager.home) == _install.env_dir(manager.home, needy)
    assert listing["llm/walled"].env_dir(manager.home) == env.env_path(manager.home, "llm/walled", walled)[0]
    for name, folder, fingerprint in (
        ("needy", _install.env_dir(manager.home, needy), needy.fingerprint()),
        ("walled", *env.env_path(manager.home, "llm/walled", walled)[:2]),
    ):
        assert manager.needs_install("llm", name) is True
        assert listing[f"llm/{name}"].requirements_status(manager.home) == "not installed"
        folder.mkdir(parents=True)
        (folder / _install.STAMP_FILE).write_text(fingerprint)
        assert manager.needs_install("llm", name) is False
        assert listing[f"llm/{name}"].requirements_status(manager.home) == "installed"


def test_plugin_of_reads_back_the_folder_env_folder_names(tmp_path):
    assert _envs.plugin_of(_envs.env_folder(tmp_path, "llm/local", "0123456789ab")) == "llm/local"
    assert _envs.plugin_of(_envs.env_folder(tmp_path, "rag/my-store", "abcdef012345")) == "rag/my-store"
    assert _envs.plugin_of(tmp_path / "envs" / "llm-local") is None
    assert _envs.plugin_of(tmp_path / "site-packages") is None
