"""Parts figures: building a request with a 5 MB image, the first time and again (a retry, the next turn).

Baseline: one ``base64.b64encode`` of the image's bytes, the encoding no request can skip. The first
request body (llm/openai's Chat Completions body) encodes once and keeps the text on the part; a second
body with the same part reuses it. Memory: the peak Python allocation while building the second body,
against the size of the base64 text (one copy is kept on the part; the body refers to it).
"""

from __future__ import annotations

import base64
import os
import sys
import tempfile
import tracemalloc

from scripts.bench.common import median_seconds, ms, table

SIZE = 5 * 1024 * 1024


def _wire() -> object:
    from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=tempfile.mkdtemp(prefix="bench-parts-"))
    provider_class = manager.load_class("llm", "openai")
    return sys.modules[provider_class.__module__.rsplit(".", 1)[0] + ".wire"]


def main() -> None:
    from pepperpy import Image
    from pepperpy.llm import Message

    wire = _wire()
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(SIZE)

    def body(message: Message) -> dict:
        return wire.request_body("bench", {"model": "m"}, [message], {}, json_schema=True, stream=False)

    baseline = median_seconds(lambda: base64.b64encode(data), 5)
    firsts = []
    for _ in range(5):
        message = Message(role="user", content=["What is in this picture?", Image(data)])
        firsts.append(median_seconds(lambda: body(message), 1))
    first = sorted(firsts)[len(firsts) // 2]
    again = median_seconds(lambda: body(message), 5)
    tracemalloc.start()
    body(message)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    encoded = len(message.content[1].base64())
    table("A request with a 5 MB image (llm/openai body)", [
        ("base64 of the bytes (baseline)", ms(baseline), "1.00x"),
        ("first body (encodes once)", ms(first), f"{first / baseline:.2f}x"),
        ("same part again (retry, next turn)", ms(again), f"{again / baseline:.2f}x"),
        ("peak memory building it again", f"{peak / 1e6:.1f} MB", f"{peak / encoded:.2f}x of the base64 text"),
    ], ("what", "time / size", "vs baseline"))
