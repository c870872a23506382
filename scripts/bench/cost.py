"""Issue 21 figures: what usage.cost costs. genai-prices is imported, and its price data loaded, only when a
cost is read; these figures say why it is an optional extra and read lazily (pepperpy/_prices.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from scripts.bench.common import median_seconds, ms, python_seconds, table

FIRST_READ = ("from pepperpy.llm import Usage; "
              "Usage(prompt_tokens=1000, completion_tokens=100, model='gpt-4o', service='openai').cost")


def import_and_first_read(repeat: int = 7) -> None:
    statements = {
        "import httpx": "import httpx",
        "from pepperpy import PepperPy; import pepperpy.llm": "from pepperpy import PepperPy; import pepperpy.llm",
        "import genai_prices": "import genai_prices",
        "import genai_prices + its price data (a first calc_price)": (
            "import genai_prices as g; g.calc_price(g.Usage(input_tokens=1000, output_tokens=100), 'gpt-4o', "
            "provider_id='openai')"),
        "pepperpy.llm + a first usage.cost read (import, price data)": FIRST_READ,
    }
    with tempfile.TemporaryDirectory() as pycache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        for code in statements.values():
            python_seconds(code, 1, env)  # fills the byte-code cache
        baseline = python_seconds("pass", repeat, env)
        costs = {label: python_seconds(code, repeat, env) - baseline for label, code in statements.items()}
        loaded = subprocess.run([sys.executable, "-c", "import sys, pepperpy.llm, pepperpy.pepperpy; "
                                 "print('genai_prices' in sys.modules)"], capture_output=True, text=True, env=env)
    httpx_cost = costs["import httpx"]
    rows = [(label, ms(cost), f"{cost / httpx_cost:.2f}x") for label, cost in costs.items()]
    table(f"cost in a fresh process (median of {repeat}, minus `python -c pass` = {ms(baseline)})", rows,
          ("what", "cost", "vs httpx"))
    print(f"genai_prices imported by pepperpy.llm and the facade: {loaded.stdout.strip()}")


def read_once_loaded(repeat: int = 2000) -> None:
    from pepperpy.llm import Usage

    usage = Usage(prompt_tokens=1200, completion_tokens=300, cache_read_tokens=1024, model="gpt-4o", service="openai")
    usage.cost  # loads genai-prices and its data
    building = median_seconds(lambda: Usage(prompt_tokens=1200, completion_tokens=300, model="gpt-4o", service="openai"),
                              repeat)
    reading = median_seconds(lambda: usage.cost, repeat)
    table("a cost read once genai-prices is loaded", [
        ("building a Usage (what every call does)", f"{building * 1e6:.1f} us", "1.00x"),
        ("reading usage.cost", f"{reading * 1e6:.1f} us", f"{reading / building:.1f}x"),
    ], ("what", "median", "vs building"))


def main() -> None:
    import_and_first_read()
    read_once_loaded()
