"""Issue 25 figure: start-up of `pepperpy -t NAME "hi"` against `pepperpy chat -p mock "hi"` on llm/mock.

Both run the whole command (a fresh interpreter, one streamed answer from llm/mock, no call log); the runs
alternate so the machine's drift hits both alike. The template names the provider, so the only extra work is
reading and rendering the template: from what its last read remembered (``templates/.parsed``), or, on a first
read, parsing the YAML (PyYAML's import included). `pepperpy -t ...` also pays the routing of a line without a
command (the entry points of installed distributions are read to tell a plugin's command from a prompt), as
`pepperpy -p mock hi` does, so both comparisons are shown. Target: within 20 ms.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench.common import ms, table

PEPPERPY = str(Path(sys.executable).parent / "pepperpy")
TEMPLATE = """\
system: You review $language code. Be terse.
prompt: "Review this:\\n\\n$input"
defaults: {language: Python}
provider: mock
"""


def _seconds(command: list[str], env: dict[str, str], forget: Path | None = None) -> tuple[float, float]:
    """(wall time, CPU time: user + system) of one run of ``command``, after removing the folder ``forget``."""
    if forget is not None:
        shutil.rmtree(forget, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def startup(repeat: int = 11) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PEPPERPY_LLM")}
        env.update(PYTHONPYCACHEPREFIX=str(root / "pycache"), PEPPERPY_HOME=str(root / "home"))
        (root / "home" / "templates").mkdir(parents=True)
        (root / "home" / "templates" / "review.yaml").write_text(TEMPLATE)
        first_read = root / "home" / "templates" / ".parsed"
        commands = {
            "pepperpy chat -p mock --no-log hi": [PEPPERPY, "chat", "-p", "mock", "--no-log", "hi"],
            "pepperpy chat -t review --no-log hi": [PEPPERPY, "chat", "-t", "review", "--no-log", "hi"],
            "pepperpy -p mock --no-log hi": [PEPPERPY, "-p", "mock", "--no-log", "hi"],
            "pepperpy -t review --no-log hi": [PEPPERPY, "-t", "review", "--no-log", "hi"],
            "pepperpy -t review --no-log hi, first read": [PEPPERPY, "-t", "review", "--no-log", "hi"],
            "python -c 'import yaml'": [sys.executable, "-c", "import yaml"],
            "python -c pass": [sys.executable, "-c", "pass"],
        }
        for command in commands.values():  # byte-code caches filled
            _seconds(command, env)
        samples: dict[str, list[tuple[float, float]]] = {label: [] for label in commands}
        for _ in range(repeat):
            for label, command in commands.items():
                samples[label].append(_seconds(command, env, first_read if label.endswith("first read") else None))
    wall = {label: statistics.median(w for w, _ in values) for label, values in samples.items()}
    cpu = {label: statistics.median(c for _, c in values) for label, values in samples.items()}
    rows = [(label, ms(wall[label]), ms(cpu[label])) for label in commands]
    for label, (slower, faster) in {
        "chat -t above chat -p (the template alone)": ("pepperpy chat -t review --no-log hi",
                                                       "pepperpy chat -p mock --no-log hi"),
        "-t above -p (both routed to chat)": ("pepperpy -t review --no-log hi", "pepperpy -p mock --no-log hi"),
        "-t above chat -p (routing included)": ("pepperpy -t review --no-log hi", "pepperpy chat -p mock --no-log hi"),
        "-t above chat -p, first read": ("pepperpy -t review --no-log hi, first read",
                                         "pepperpy chat -p mock --no-log hi"),
        "import yaml above python -c pass": ("python -c 'import yaml'", "python -c pass"),
    }.items():
        rows.append((label, _difference(wall[slower] - wall[faster]), _difference(cpu[slower] - cpu[faster])))
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall time suffers; CPU less)")
    table(f"command start-up with a template, median of {repeat} (runs alternated)", rows,
          ("command", "wall time", "CPU time"))
    print("target: pepperpy -t NAME within 20 ms of pepperpy chat")


def instructions() -> None:
    """The same commands' CPU instructions under valgrind (deterministic; minutes per command on a busy machine)."""
    import re
    from concurrent.futures import ThreadPoolExecutor

    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts")
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PEPPERPY_LLM")}
        env.update(PYTHONPYCACHEPREFIX=str(root / "pycache"))
        homes = {"remembered": root / "home", "first read": root / "first", "saved": root / "saved"}
        for home in ("remembered", "first read"):
            (homes[home] / "templates").mkdir(parents=True)
            (homes[home] / "templates" / "review.yaml").write_text(TEMPLATE)
        subprocess.run([PEPPERPY, "templates", "save", "review", "--system", "You review $language code. Be terse.",
                        "--prompt", "Review this:\n\n$input", "-d", "language", "Python", "-p", "mock"],
                       check=True, env={**env, "PEPPERPY_HOME": str(homes["saved"])}, stdout=subprocess.DEVNULL)
        runs = {
            "pepperpy chat -p mock --no-log hi": ("remembered", ["chat", "-p", "mock", "--no-log", "hi"]),
            "pepperpy chat -t review --no-log hi": ("remembered", ["chat", "-t", "review", "--no-log", "hi"]),
            "pepperpy -p mock --no-log hi": ("remembered", ["-p", "mock", "--no-log", "hi"]),
            "pepperpy -t review --no-log hi": ("remembered", ["-t", "review", "--no-log", "hi"]),
            "pepperpy -t review --no-log hi, first read": ("first read", ["-t", "review", "--no-log", "hi"]),
            "pepperpy -t review --no-log hi, first read after templates save": ("saved",
                                                                                ["-t", "review", "--no-log", "hi"]),
        }
        for home, args in runs.values():  # byte-code cached; the first home's template remembered
            subprocess.run([PEPPERPY, *args], check=True, env={**env, "PEPPERPY_HOME": str(homes["remembered"])},
                           stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-c", "import yaml"], check=True, env=env)

        def count(home: str, args: list[str]) -> int:
            done = subprocess.run(
                ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", PEPPERPY, *args],
                env={**env, "PEPPERPY_HOME": str(homes[home])}, capture_output=True, text=True, check=True)
            return int(re.search(r"Collected : (\d+)", done.stderr).group(1))

        with ThreadPoolExecutor(len(runs)) as pool:
            counted = dict(zip(runs, pool.map(lambda run: count(*run), runs.values())))
    base = counted["pepperpy chat -p mock --no-log hi"]
    rows = [(label, f"{n / 1e6:,.1f}M", f"{(n - base) / 1e6:+,.1f}M ({n / base:.3f}x)") for label, n in counted.items()]
    table("CPU instructions per command (valgrind), against pepperpy chat -p mock", rows,
          ("command", "instructions", "above chat -p mock"))


def _difference(seconds: float) -> str:
    return ms(seconds) if seconds >= 0 else f"-{ms(-seconds)}"


def main() -> None:
    startup()
