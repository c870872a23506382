from pepperpy.llm import GenerationResult, LLMProvider


class AwesomeModel(LLMProvider):
    greeting: str = "awesome"

    async def generate(self, messages, **options):
        return GenerationResult(content=f"{self.greeting}, {messages[-1].content}!")
