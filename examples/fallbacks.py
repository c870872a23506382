"""A fallback chain: the first member's server is down, so the next one answers; the result says who did."""

import asyncio
import os

from pepperpy import PepperPy


async def main() -> None:
    local_server = os.environ.get("PEPPERPY_BASE_URL", "http://127.0.0.1:8080/v1")  # e.g. llama.cpp's server
    chain = [
        ("openai", {"base_url": "http://127.0.0.1:9/v1", "api_key": "unused"}),  # nothing listens on port 9
        ("llamacpp", {"base_url": local_server}),
        "local",  # the embedded model: never installed or loaded unless the others fail
    ]
    async with PepperPy().with_llm(chain, temperature=0, max_tokens=24) as pepper:
        result = await pepper.chat.with_system("Be brief.").with_user("What is the capital of France?").generate()
    report = result.metadata["fallback"]
    print(result.content.strip())
    print(f"served by {report['served_by']} after {[failed['member'] for failed in report['failed']]}")


if __name__ == "__main__":
    asyncio.run(main())
