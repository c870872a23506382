"""llm/bedrock's first use, for real: in a fresh virtual environment with PepperPy and without botocore,
``import pepperpy`` does not import botocore, and the first ``with_llm("bedrock")`` installs the plugin's
requirements (botocore) with uv into the PEPPERPY_HOME's env for the plugin; a second process uses that env."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).parent / "uv")

CHILD = textwrap.dedent(
    '''
    import asyncio, importlib.util, json, sys
    findable_before = importlib.util.find_spec("botocore") is not None
    import pepperpy
    from pepperpy import PepperPy
    from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
    after_import = "botocore" in sys.modules
    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=sys.argv[1])

    async def main():
        async with PepperPy(plugin_manager=manager).with_llm("bedrock", region="eu-west-1") as pepper:
            return type(pepper.llm.endpoint.auth).__name__, pepper.llm.base_url
    signer, base_url = asyncio.run(main())
    import botocore
    print(json.dumps({"findable_before": findable_before, "after_import": after_import, "signer": signer,
                      "base_url": base_url, "botocore": botocore.__file__}))
    '''
)


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory) -> str:
    """A new venv with PepperPy (from this checkout) and its own dependencies only."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    subprocess.run([UV, "pip", "install", "--quiet", "--python", python, "-e", str(ROOT)], check=True, timeout=600)
    return python


def run(python: str, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AWS_PROFILE")}
    env.update(AWS_ACCESS_KEY_ID="AKIDEXAMPLENOTREAL05", AWS_SECRET_ACCESS_KEY="installSecretNotReal",
               AWS_CONFIG_FILE=str(home.parent / "no-config"), AWS_SHARED_CREDENTIALS_FILE=str(home.parent / "no-creds"))
    done = subprocess.run([python, "-c", CHILD, str(home)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_first_use_installs_botocore_and_import_pepperpy_never_pays_for_it(fresh_python, tmp_path):
    home = tmp_path / "home"
    first = run(fresh_python, home)
    assert first["findable_before"] is False and first["after_import"] is False
    assert first["signer"] == "SigV4" and first["base_url"] == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    (env,) = [path for path in (home / "envs").iterdir() if path.is_dir()]
    assert env.name.startswith("llm-bedrock-") and first["botocore"].startswith(str(env))
    second = run(fresh_python, home)
    assert second["botocore"] == first["botocore"] and [p for p in (home / "envs").iterdir() if p.is_dir()] == [env]
