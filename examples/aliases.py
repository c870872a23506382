"""Aliases: other names for a plugin (or for another alias) with preset config; OPENAI_BASE_URL.

    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=no-key python examples/aliases.py

The openai plugin takes base_url from OPENAI_BASE_URL when none is given, as the openai SDK
does; without it this talks to OpenAI itself and needs OPENAI_API_KEY. Aliases can also be
saved in ~/.pepperpy/aliases.json: {"llm": {"gpt4": {"target": "openai", "config": {"model": "gpt-4"}}}}
"""

import asyncio

from pepperpy import PepperPy
from pepperpy.plugins import auto_context, create_provider_instance, register_plugin_alias

register_plugin_alias("llm", "gpt4", "openai", {"model": "gpt-4", "temperature": 0})
register_plugin_alias("llm", "brief", "gpt4", {"max_tokens": 40})  # an alias of an alias


async def main() -> None:
    async with PepperPy().with_llm("brief") as pepper:
        llm = pepper.llm  # the real plugin's identity, and the alias it was created under
        print(f"{llm.alias} -> {llm.plugin_id} (name {llm.name}), model {llm.model}, base_url {llm.base_url}")
        result = await pepper.chat.with_system("Be brief.").with_user("What is the capital of France?").generate()
        print(result.content)

    llm = create_provider_instance("llm", "gpt4", max_tokens=20)  # explicit config overrides the alias's
    async with auto_context(llm):
        print(f"{llm.alias}: max_tokens {llm.max_tokens}, temperature {llm.temperature}")
        print((await llm.generate("Say hello in French.")).content)


if __name__ == "__main__":
    asyncio.run(main())
