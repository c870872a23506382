"""Structured output: a pydantic model in, a validated instance out (result.parsed)."""

import asyncio

from pydantic import BaseModel

from pepperpy import PepperPy


class City(BaseModel):
    name: str
    country: str


async def main() -> None:
    async with PepperPy().with_llm("local", temperature=0, max_tokens=60) as pepper:
        result = await (
            pepper.chat.with_system("Be brief.").with_user("Give the capital of Italy as JSON.").with_response_model(City).generate()
        )
        print(repr(result.parsed))


if __name__ == "__main__":
    asyncio.run(main())
