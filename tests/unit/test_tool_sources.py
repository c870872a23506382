"""What MCP servers brought to every tool (pepperpy/tools.py): approval, name collisions, parts as results,
and a ToolError reaching the caller; with plain functions and llm/mock scripting the calls."""

from __future__ import annotations

import pytest

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, ToolError
from pepperpy.llm import MessageRole
from pepperpy.parts import Image, ImagePart

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc0000003"
    "010100c9fe92ef0000000049454e44ae426082"
)


def delete_file(path: str) -> str:
    """Delete a file."""
    return f"deleted {path}"


def snapshot() -> list:
    """A picture and its caption."""
    return ["a red dot", Image(PNG)]


def broken() -> str:
    """A tool whose server is gone."""
    raise ToolError("MCP server 'x', tool 'broken': the call failed")


def mock(builtin_manager, *replies) -> PepperPy:
    return PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=list(replies), cycle=False)


def tool_messages(pepper: PepperPy) -> list:
    return [m for m in pepper.llm.calls[-1] if m.role == MessageRole.TOOL]


async def test_approve_asks_before_a_functions_call_and_a_refusal_is_told_to_the_model(builtin_manager):
    asked = []

    def approve(server, tool, arguments):
        asked.append((server, tool, arguments))
        return False

    pepper = mock(builtin_manager, {"tool": "delete_file", "arguments": {"path": "/etc/hosts"}}, "ok")
    async with pepper:
        await pepper.chat.with_user("go").with_tools(delete_file, approve=approve).generate()
    assert asked == [(None, "delete_file", {"path": "/etc/hosts"})]
    assert tool_messages(pepper)[0].content == "error: the user refused this call of delete_file; do not retry it"


async def test_two_tools_of_one_name_are_refused_naming_both(builtin_manager):
    def other():
        pass

    other.__name__ = "delete_file"
    async with mock(builtin_manager, "x") as pepper:
        with pytest.raises(ConfigError, match=r"two tools are named 'delete_file': one from function .*delete_file, one from function .*other"):
            await pepper.chat.with_user("go").with_tools(delete_file, other).generate()


async def test_a_tool_returning_parts_sends_them_as_the_tool_messages_content(builtin_manager):
    pepper = mock(builtin_manager, {"tool": "snapshot"}, "ok")
    async with pepper:
        await pepper.chat.with_user("go").with_tools(snapshot).generate()
    text, image = tool_messages(pepper)[0].content
    assert text.text == "a red dot" and isinstance(image, ImagePart) and image.read() == PNG


async def test_a_tool_error_reaches_the_caller_instead_of_the_model(builtin_manager):
    pepper = mock(builtin_manager, {"tool": "broken"}, "never")
    async with pepper:
        with pytest.raises(ToolError, match="tool 'broken'"):
            await pepper.chat.with_user("go").with_tools(broken).generate()
    assert len(pepper.llm.calls) == 1
