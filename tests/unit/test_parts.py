"""Message parts: media from a path, bytes or a URL; text of any message; JSON and log forms; read and encoded once."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys

import pytest

from pepperpy.errors import InvalidInputError
from pepperpy.llm import Message, ReasoningPart, TextPart
from pepperpy.parts import Audio, DocumentPart, File, Image, ImagePart, part_for_path

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
PDF = b"%PDF-1.4\n% a small document\n"


def test_plain_text_messages_are_unchanged():
    message = Message(role="user", content="Hi")
    assert message.content == "Hi" and message.text == "Hi" and message.reasoning == ""
    assert Message(role="assistant").text == ""


def test_text_and_parts_in_one_message(tmp_path):
    (tmp_path / "cat.png").write_bytes(PNG)
    message = Message(role="user", content=["What is in ", Image(tmp_path / "cat.png"), "this picture?"])
    assert message.text == "What is in this picture?"
    assert [type(p) for p in message.content] == [TextPart, ImagePart, TextPart]
    answer = Message(role="assistant", content=[ReasoningPart(text="a cat, surely", signature="sig"), "A cat."])
    assert answer.text == "A cat." and answer.reasoning == "a cat, surely"


def test_media_from_a_path_bytes_or_a_url(tmp_path):
    (tmp_path / "contract.pdf").write_bytes(PDF)
    document = File(str(tmp_path / "contract.pdf"))
    assert isinstance(document, DocumentPart)
    assert (document.media_type, document.name, document.read()) == ("application/pdf", "contract.pdf", PDF)
    assert Image(PNG).media_type == "image/png"  # recognized from the bytes
    assert Audio(b"RIFF\x00\x00\x00\x00WAVEfmt ").media_type == "audio/wav"
    assert Image(b"\x00\x01", "image/heic").media_type == "image/heic"
    remote = Image("https://example.com/cat.jpg")
    assert (remote.url, remote.media_type, remote.path, remote.data) == ("https://example.com/cat.jpg", "image/jpeg", None, None)
    inline = Image("data:image/png;base64," + base64.b64encode(PNG).decode())
    assert inline.read() == PNG and inline.media_type == "image/png"


def test_a_url_is_never_fetched():
    remote = Image("https://example.com/cat.png")
    with pytest.raises(InvalidInputError, match="URL, which PepperPy does not fetch"):
        remote.read()


def test_bad_sources_say_what_to_do(tmp_path):
    with pytest.raises(InvalidInputError, match="no such file"):
        Image(tmp_path / "missing.png")
    with pytest.raises(InvalidInputError, match="media_type='image/png'"):
        Image(b"\x00\x01\x02")
    with pytest.raises(InvalidInputError, match="takes a path, bytes or a URL"):
        Image(42)  # type: ignore[arg-type]
    (tmp_path / "notes").write_bytes(b"plain")
    with pytest.raises(InvalidInputError, match="cannot tell the media type"):
        File(tmp_path / "notes")


def test_bytes_are_read_once_and_base64_encoded_once(tmp_path):
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    image = Image(path)
    first = image.base64()
    path.unlink()  # a second read would fail: the bytes are kept on the part
    assert image.base64() is first
    assert image.data_url() == "data:image/png;base64," + first
    assert image.sha256() == hashlib.sha256(PNG).hexdigest()


def test_the_json_form_round_trips_and_carries_the_bytes_as_base64():
    message = Message(role="user", content=["Describe", Image(PNG)])
    wired = message.model_dump(mode="json", exclude_defaults=True)  # what crosses a process boundary
    assert wired["content"][1] == {"type": "image", "data": base64.b64encode(PNG).decode(), "media_type": "image/png"}
    again = Message.model_validate(wired)
    assert again.content[1].read() == PNG and again.text == "Describe"
    assert Message.model_validate_json(message.model_dump_json()).content[1].read() == PNG


def test_describe_keeps_hash_type_and_size_never_the_bytes(tmp_path):
    (tmp_path / "cat.png").write_bytes(PNG)
    described = Image(tmp_path / "cat.png").describe()
    assert described == {"type": "image", "media_type": "image/png", "sha256": hashlib.sha256(PNG).hexdigest(), "size": len(PNG)}
    assert ReasoningPart(text="hmm", encrypted="secret-blob").describe() == {"type": "reasoning", "text": "hmm", "encrypted": True}


def test_part_for_path_picks_the_kind_by_extension(tmp_path):
    for name, kind in (("a.png", "image"), ("a.wav", "audio"), ("a.pdf", "document"), ("a.txt", "document")):
        (tmp_path / name).write_bytes(b"x")
        assert part_for_path(str(tmp_path / name)).type == kind


def test_importing_pepperpy_does_not_import_the_parts_and_the_names_are_exported():
    code = (
        "import sys, pepperpy; assert 'pepperpy.parts' not in sys.modules and 'pepperpy.llm' not in sys.modules;"
        "from pepperpy import Image, Audio, File; from pepperpy.llm import Image as I2; assert Image is I2; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr



def test_parts_cross_the_process_boundary_of_an_isolated_plugin(tmp_path):
    from pepperpy._isolation import protocol
    from pepperpy.llm import to_messages

    (tmp_path / "cat.png").write_bytes(PNG)
    sent = [
        Message(role="user", content=["What?", Image(PNG), Image(tmp_path / "cat.png"), Image("https://example.com/c.png")]),
        Message(role="assistant", content=[ReasoningPart(text="hm", signature="sig"), "A cat."]),
    ]
    (wired,), _ = protocol.llm_request(sent, {})
    received = to_messages(protocol.from_wire(wired))  # what the worker hands the provider
    user, assistant = received
    assert [p.read() for p in user.content[1:3]] == [PNG, PNG] and user.content[3].url == "https://example.com/c.png"
    assert assistant.content[0] == ReasoningPart(text="hm", signature="sig") and assistant.text == "A cat."


def test_an_extension_that_tells_no_media_kind_is_no_guess(tmp_path):
    """``.xyz`` is ``chemical/x-xyz`` to mimetypes: no model takes that, so it is not guessed."""
    from pepperpy.errors import InvalidInputError
    from pepperpy.parts import File, part_for_path

    (tmp_path / "foo.xyz").write_bytes(b"data")
    (tmp_path / "notes.md").write_text("# notes")
    with pytest.raises(InvalidInputError, match="cannot tell the media type of .*foo.xyz; pass it"):
        File(tmp_path / "foo.xyz")
    assert File(tmp_path / "foo.xyz", "chemical/x-xyz").media_type == "chemical/x-xyz"  # given: kept
    assert part_for_path(str(tmp_path / "foo.xyz")).media_type == "application/octet-stream"  # pepperpy chat -a
    assert part_for_path(str(tmp_path / "notes.md")).media_type == "text/markdown"


def test_errors_name_the_constructor_called_and_a_media_type_of_its_kind(tmp_path):
    """``File(...)`` makes a DocumentPart, but its errors say ``File()`` (what the caller typed), and the example
    media type is one of the part's kind (a document is not ``image/png``)."""
    (tmp_path / "notes.xyz").write_bytes(b"data")
    with pytest.raises(InvalidInputError) as caught:
        File(tmp_path / "notes.xyz")
    assert str(caught.value).startswith("File(): ")
    assert "media_type='image/png'" not in str(caught.value)
    assert "media_type='application/pdf'" in str(caught.value)
    with pytest.raises(InvalidInputError, match=r"^File\(\) takes a path, bytes or a URL"):
        File(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"^Audio\(\): .*media_type='audio/wav'"):
        Audio(b"\x00\x01\x02")


def test_image_and_audio_refuse_media_of_another_kind(tmp_path):
    """``Image("contract.pdf")`` is a mistake (``File`` is meant): refused at once, naming the file, its type and
    the constructor to use, rather than an image part of ``application/pdf`` a service rejects later."""
    pdf = tmp_path / "contract.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    with pytest.raises(InvalidInputError, match=r"^Image\(\): .*contract.pdf is application/pdf, not an image; use File\("):
        Image(pdf)
    with pytest.raises(InvalidInputError, match=r"^Image\(\): 15 bytes is application/pdf, not an image"):
        Image(pdf.read_bytes())
    with pytest.raises(InvalidInputError, match=r"^Audio\(\): .* is image/png, not audio; use Image\("):
        Audio(b"\x89PNG\r\n\x1a\n" + bytes(8))
    with pytest.raises(InvalidInputError, match=r"not an image"):
        Image(b"\x00\x01", media_type="text/plain")
    assert Image(b"\x00\x01", media_type="image/x-custom").media_type == "image/x-custom"  # any image type passes
    assert File(pdf).media_type == "application/pdf"  # File takes every kind


def test_text_only_tells_the_messages_that_need_no_conversion_and_no_part_check():
    """Every call asks it (the LLM base class, the facade): only Message objects with text (or no) content pass."""
    from pepperpy.llm import text_only

    plain = [Message(role="system", content="Be brief."), Message(role="user", content="Hi"), Message(role="assistant")]
    assert text_only(plain) and text_only([])
    assert not text_only([*plain, Message(role="user", content=["Hi", Image(PNG, "image/png")])])
    assert not text_only([{"role": "user", "content": "Hi"}]), "a dict is converted first"

    class Note(Message):
        pass

    assert not text_only([Note(role="user", content="Hi")]), "a subclass takes the checked path"
