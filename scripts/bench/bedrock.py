"""Issue 21 figures for llm/bedrock: first use (the plugin's requirements, botocore, installed with uv into a fresh
PEPPERPY_HOME), later cold starts (a new process: import + create + open, the env already there), and
``import pepperpy`` without botocore.

Everything runs in a fresh venv that has PepperPy (this checkout) and its own dependencies only, so botocore is
not there until the plugin installs it, as for a new user. The baseline is ``import pepperpy`` in that venv,
measured in the same run; the uv cache is warm (the figure without a cache is the network's, not ours).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench.common import ROOT, ms, table

UV = str(Path(sys.executable).parent / "uv")
REPEAT = 5
CHILD = """
import asyncio, json, sys, time
started = time.perf_counter()
import pepperpy
from pepperpy import PepperPy
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
imported = time.perf_counter()
botocore_after_import = "botocore" in sys.modules
manager = PluginManager(search_paths=[builtin_plugins_dir()], home=sys.argv[1])

async def main():
    async with PepperPy(plugin_manager=manager).with_llm("bedrock", region="us-east-1") as pepper:
        pepper.llm
asyncio.run(main())
ready = time.perf_counter()
print(json.dumps({"import_s": imported - started, "create_open_s": ready - imported, "botocore_after_import": botocore_after_import}))
"""


def fresh_venv(folder: Path) -> str:
    venv = folder / "venv"
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([UV, "pip", "install", "--quiet", "--compile-bytecode", "--python", python, "-e", str(ROOT)], check=True)
    return python


def run(python: str, args: list[str], env: dict[str, str]) -> tuple[float, dict | None]:
    started = time.perf_counter()
    done = subprocess.run([python, *args], check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    return wall, (json.loads(lines[-1]) if lines else None)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-bedrock-") as tmp:
        folder = Path(tmp)
        python = fresh_venv(folder)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AWS_PROFILE")}
        env.update(AWS_ACCESS_KEY_ID="AKIDBENCHNOTREAL", AWS_SECRET_ACCESS_KEY="benchSecretNotReal",
                   AWS_CONFIG_FILE=str(folder / "none"), AWS_SHARED_CREDENTIALS_FILE=str(folder / "none"),
                   AWS_EC2_METADATA_DISABLED="true")
        run(python, ["-c", "import pepperpy"], env)  # warm the page cache
        import_only = statistics.median(run(python, ["-c", "import pepperpy"], env)[0] for _ in range(REPEAT))
        first_use = [run(python, ["-c", CHILD, str(folder / f"home-{i}")], env) for i in range(3)]  # each a fresh home
        later = [run(python, ["-c", CHILD, str(folder / "home-0")], env) for _ in range(REPEAT)]
        botocore_env = next(p for p in (folder / "home-0" / "envs").iterdir() if p.is_dir())
        botocore_import = statistics.median(
            run(python, ["-c", f"import sys; sys.path.insert(0, {str(botocore_env)!r}); import botocore.session, botocore.auth"], env)[0]
            for _ in range(REPEAT)
        )  # a whole interpreter start too, as in the import row

    first_wall = statistics.median(wall for wall, _ in first_use)
    later_wall = statistics.median(wall for wall, _ in later)
    later_create = statistics.median(figures["create_open_s"] for _, figures in later if figures)
    imported_botocore = any(figures and figures["botocore_after_import"] for _, figures in first_use + later)
    rows = [
        ("python -c 'import pepperpy' (botocore imported: " + ("YES" if imported_botocore else "no") + ")", ms(import_only), "1x"),
        ("first use: import + with_llm('bedrock') + open, fresh home (uv installs botocore)", ms(first_wall),
         f"{first_wall / import_only:.1f}x"),
        ("later cold start: the same in a new process, env installed", ms(later_wall), f"{later_wall / import_only:.1f}x"),
        ("  of which create + open (botocore imported, credentials resolved)", ms(later_create), ""),
        ("python -c 'import botocore.session, botocore.auth' (what import pepperpy does not pay)", ms(botocore_import),
         f"{botocore_import / import_only:.1f}x"),
    ]
    table("llm/bedrock first use and cold start (fresh venv without botocore; uv cache warm)", rows, ("what", "time", "ratio"))


if __name__ == "__main__":
    main()
