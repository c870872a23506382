"""Use plugins that an installed distribution exposes (after `uv pip install ./examples/installed_package`).

pyproject.toml's entry points make `llm/awesome` (a provider class, imported only when asked for)
and `llm/folderly` (a plugin folder inside the package) available to every PepperPy in that environment.
"""

import asyncio

from pepperpy import PepperPy


async def main() -> None:
    async with PepperPy().with_llm("awesome", greeting="Hello") as pepper:
        print((await pepper.chat.with_user("world").generate()).content)
    async with PepperPy().with_llm("folderly") as pepper:
        print((await pepper.chat.with_user("quiet").generate()).content)


if __name__ == "__main__":
    asyncio.run(main())
