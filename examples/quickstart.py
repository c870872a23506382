"""Quickstart: a real answer from a local model, no API key, no network (after the first install)."""

import asyncio

from pepperpy import PepperPy


async def main() -> None:
    async with PepperPy().with_llm("local", temperature=0, seed=42, max_tokens=80) as pepper:
        print("Q: What is the capital of France?\nA: ", end="", flush=True)
        chat = pepper.chat.with_system("You are a helpful assistant. Be brief.").with_user("What is the capital of France?")
        async for chunk in chat.stream():
            print(chunk.content, end="", flush=True)
        print()
        result = await pepper.chat.with_system("Be brief.").with_user("Name three colors.").generate()
        print(f"Q: Name three colors.\nA: {result.content}\n({result.usage.completion_tokens} tokens)")


if __name__ == "__main__":
    asyncio.run(main())
