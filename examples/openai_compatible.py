"""Any OpenAI-compatible server: presets (openai, openrouter, groq, ollama, llamacpp, ...) or base_url.

    PEPPERPY_BASE_URL=http://127.0.0.1:8080/v1 python examples/openai_compatible.py

With no PEPPERPY_BASE_URL it uses OpenAI itself and needs OPENAI_API_KEY.
"""

import asyncio
import os

from pepperpy import PepperPy


def get_time(city: str) -> str:
    """The current local time in a city."""
    return f"It is 10:42 in {city}."


async def main() -> None:
    base_url = os.environ.get("PEPPERPY_BASE_URL")
    settings = {"temperature": 0, "max_tokens": 60}
    pepper = PepperPy().with_llm("llamacpp", base_url=base_url, **settings) if base_url else PepperPy().with_llm("openai", **settings)
    async with pepper:
        result = await pepper.chat.with_system("Be brief.").with_user("What is the capital of France?").generate()
        print(result.content)
        async for chunk in pepper.chat.with_user("Count to three.").with_options(max_tokens=20).stream():
            print(chunk.content, end="", flush=True)
        print()
        # Tools: plain functions; generate() runs the ones the model calls (models that support tools).
        timed = await pepper.chat.with_user("What time is it in Lisbon?").with_tools(get_time).generate()
        print(timed.content)


if __name__ == "__main__":
    asyncio.run(main())
