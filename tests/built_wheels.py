"""Tiny real wheels built with ``uv build`` (hatchling) for install tests, installed by uv from a find-links folder.

``pth_marker_wheel`` installs ``pthmark_startup.pth``: at every interpreter start that reads it as a site folder
(``site.addsitedir``, a venv's site-packages) it creates the file named by ``PEPPERPY_TEST_PTH_MARKER``, if set.
The wheel's content does not depend on the test, so uv's cache may keep it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

PTH_PACKAGE = "pepperpy-test-pth-marker"
PTH_VERSION = "1.0"
PTH_FILE = "pthmark_startup.pth"
MARKER_VARIABLE = "PEPPERPY_TEST_PTH_MARKER"
PTH_LINE = f'import os; p = os.environ.get("{MARKER_VARIABLE}"); p and open(p, "a").close()\n'


def build_wheel(source: Path, out: Path, name: str, version: str, module: str, extra_files: dict[str, str]) -> Path:
    """Build ``name==version`` (the module ``module`` plus ``extra_files`` at the wheel's top level) into ``out``."""
    (source / module).mkdir(parents=True, exist_ok=True)
    (source / module / "__init__.py").write_text(f'VALUE = "{module} {version}"\n')
    include = "".join(f'"{file}" = "{file}"\n' for file in extra_files)
    for file, text in extra_files.items():
        (source / file).write_text(text)
    (source / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "{name}"
        version = "{version}"

        [tool.hatch.build.targets.wheel]
        packages = ["{module}"]

        [tool.hatch.build.targets.wheel.force-include]
        """) + include)
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "uv", "build", "--wheel", "--no-config", "-o", str(out), str(source)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"uv build of {name} failed:\n{done.stdout}\n{done.stderr}")
    (wheel,) = out.glob(f"{name.replace('-', '_')}-{version}-*.whl")
    return wheel


def pth_marker_wheel(folder: Path) -> Path:
    """The wheel of ``pepperpy-test-pth-marker 1.0`` (module ``pthmark``) in ``folder/wheels``."""
    return build_wheel(folder / "pthmark-src", folder / "wheels", PTH_PACKAGE, PTH_VERSION, "pthmark",
                       {PTH_FILE: PTH_LINE})


def sha256_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
