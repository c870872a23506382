"""A call's price in USD, from the genai-prices package, computed only when ``usage.cost`` is read.

genai-prices is an optional extra (``pip install 'pepperpy[cost]'``), not a dependency: it brings a second
HTTP client (httpx2) and 1.7 MB of price data that take about a second to import and load, which no call
should pay for. It is imported the first time a cost is read; without it every cost is None and the first
read warns once, saying what to install.

Prices follow genai-prices' rules: ``input_tokens`` is every prompt token, with the cache reads and writes
among them priced at their own rates, and output tokens include reasoning. A model or service genai-prices
does not know is None, never a guess: the service must be named (``Usage.service``), so a model served by a
local server is not priced as a hosted one.
"""

from __future__ import annotations

import functools
import warnings
from decimal import Decimal
from typing import Any

MISSING = ("usage.cost is None: pricing calls needs the genai-prices package; "
           "install it with: pip install 'pepperpy[cost]'")


@functools.cache
def _genai_prices() -> Any:
    """The genai_prices module, imported once; None (and a warning, once) when it is not installed."""
    try:
        import genai_prices
    except ImportError:
        warnings.warn(MISSING, RuntimeWarning, stacklevel=4)
        return None
    return genai_prices


def price(usage: Any) -> Decimal | None:
    """The USD price of ``usage`` (a ``pepperpy.llm.Usage``), or None when it cannot be known."""
    if not usage.service or not usage.model:
        return None
    prices = _genai_prices()
    if prices is None:
        return None
    counts = prices.Usage(
        input_tokens=usage.prompt_tokens,
        cache_read_tokens=usage.cache_read_tokens or 0,
        cache_write_tokens=usage.cache_write_tokens or 0,
        output_tokens=usage.completion_tokens,
    )
    try:
        found = prices.calc_price(counts, usage.model, provider_id=usage.service)
    except (LookupError, ValueError):  # an unknown model or service; counts genai-prices refuses
        return None
    return found.total_price


__all__ = ["MISSING", "price"]
