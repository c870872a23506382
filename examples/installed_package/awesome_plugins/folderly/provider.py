from pepperpy.llm import GenerationResult, LLMProvider


class Folderly(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content=messages[-1].content.upper())
