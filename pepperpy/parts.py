"""The parts of a message that is more than one string: text, images, audio, files, reasoning.

``Message.content`` is a ``str`` (plain text, as always) or a list of parts. Media parts
come from a path, from bytes (with a media type, or one recognized from the bytes), or
from a URL, which PepperPy passes on and never fetches::

    Image("cat.png")                       # read when first sent; cached on the part
    Image(png_bytes, "image/png")
    Image("https://example.com/cat.png")   # the service fetches it, if it takes URLs
    File("contract.pdf")                   # a PDF or another document
    Audio("question.wav")

A part's bytes are read once and base64-encoded once (both kept on the part), so a
retried or repeated request reuses them. Its JSON form (``model_dump(mode="json")``)
carries its path or URL, or its bytes as base64 text, so a part can cross a process boundary;
``describe()`` is the form for logs and cache keys: type, media type, size and the
SHA-256 of the bytes, never the bytes.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from pepperpy.errors import InvalidInputError

# Media types recognized from the first bytes, when bytes come without one.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"ID3", "audio/mpeg"),
    (b"\xff\xfb", "audio/mpeg"),
    (b"fLaC", "audio/flac"),
    (b"OggS", "audio/ogg"),
)
# Types ``mimetypes`` does not know everywhere.
_EXTENSIONS = {".webp": "image/webp", ".md": "text/markdown", ".flac": "audio/flac", ".m4a": "audio/mp4"}
_URL_SCHEMES = ("http://", "https://", "gs://", "s3://")
# The kinds of media a model may take; a guess of another kind (``chemical/x-xyz`` for ``.xyz``) is no guess.
_MEDIA_KINDS = ("application/", "audio/", "font/", "image/", "text/", "video/")
# A media type of each part's kind, for the "pass it, e.g. media_type=..." hints.
_EXAMPLE_TYPES = {"image": "image/png", "audio": "audio/wav", "document": "application/pdf"}
UNKNOWN_TYPE = "application/octet-stream"


def _sniffed(data: bytes) -> str | None:
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    return None


def _guessed(name: str) -> str | None:
    suffix = Path(name.split("?", 1)[0]).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    guess = mimetypes.guess_type("x" + suffix)[0] if suffix else None
    if guess is None or not guess.startswith(_MEDIA_KINDS):
        return None
    return {"audio/x-wav": "audio/wav", "audio/vnd.wave": "audio/wav"}.get(guess, guess)


class _Typed(BaseModel):
    """A part's dumps always name its type (also with ``exclude_defaults``): it tells the parts apart."""

    model_config = ConfigDict(extra="forbid")

    @model_serializer(mode="wrap")
    def _with_type(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {"type": getattr(self, "type"), **handler(self)}


class TextPart(_Typed):
    """Text; ``cache=True`` marks a prompt-cache point after it (for services that take one).

    ``source`` names where a fragment's text came from (a path, ``stdin``, a URL, ``pdf:report.pdf``): the call
    log stores such a text once by its hash (``ChatBuilder.with_fragment``)."""

    type: Literal["text"] = "text"
    text: str
    cache: bool = False
    source: str | None = None

    def describe(self) -> dict[str, Any]:
        return self.model_dump(exclude_defaults=True)


class ReasoningPart(_Typed):
    """A model's reasoning in an assistant message, with what the service needs to accept it back unchanged:
    ``signature`` (Anthropic, Bedrock, Gemini) or ``encrypted`` (a redacted or encrypted payload)."""

    type: Literal["reasoning"] = "reasoning"
    text: str = ""
    id: str | None = None  # the service's id of the reasoning item (OpenAI Responses), sent back with it
    signature: str | None = None
    encrypted: str | None = Field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        return self.model_dump(exclude_defaults=True, exclude={"encrypted"}) | ({"encrypted": True} if self.encrypted else {})


class MediaPart(_Typed):
    """Bytes of some media type, from ``data``, a ``path`` or a ``url``; see the module docstring."""

    type: str = "media"  # each subclass names its own
    data: bytes | None = Field(default=None, repr=False)
    path: str | None = None
    url: str | None = None
    media_type: str | None = None
    name: str | None = None
    cache: bool = False

    _bytes: bytes | None = PrivateAttr(default=None)
    _base64: str | None = PrivateAttr(default=None)
    _sha256: str | None = PrivateAttr(default=None)

    @field_validator("data", mode="before")
    @classmethod
    def _base64_text(cls, value: Any) -> Any:
        """``data`` given as text is the base64 of the JSON form (bytes stay bytes)."""
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except ValueError:
                raise ValueError("data as text must be base64; pass the bytes themselves") from None
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        return value

    @field_serializer("data", when_used="json")
    def _data_as_base64(self, value: bytes | None) -> str | None:
        return None if value is None else self.base64()

    @model_validator(mode="after")
    def _one_source(self) -> MediaPart:
        sources = [name for name in ("data", "path", "url") if getattr(self, name) is not None]
        if self.path is not None and self.data is not None:
            sources.remove("path")  # the JSON form keeps the path it was read from beside the bytes
        if len(sources) != 1:
            got = " and ".join(sources) if sources else "none"
            raise ValueError(f"a {self.type} part takes exactly one of data, path or url (got {got})")
        if self.media_type is None:
            self.media_type = self._find_media_type()
        return self

    def _find_media_type(self) -> str:
        found = None
        if self.data is not None:
            found = _sniffed(self.data)
        for name in (self.path, self.url, self.name):
            if found is None and name:
                found = _guessed(name)
        if found is None:
            source = self.path or self.url or f"{len(self.data or b'')} bytes"
            example = _EXAMPLE_TYPES.get(self.type, "image/png")
            raise ValueError(f"cannot tell the media type of {source}; pass it, e.g. media_type='{example}'")
        return found

    @property
    def source(self) -> str:
        """Where the part comes from, for messages: its path, its URL, or its size."""
        if self.path is not None:
            return self.path
        if self.url is not None:
            return self.url
        return f"{len(self.data or b'')} bytes"

    def read(self) -> bytes:
        """The bytes (a path is read the first time, then kept); a URL part has none."""
        if self.data is not None:
            return self.data
        if self._bytes is None:
            if self.path is None:
                raise InvalidInputError(
                    f"the {self.type} at {self.url} is a URL, which PepperPy does not fetch; this provider needs the bytes: "
                    f"download it and pass {self.type.capitalize()}(bytes, media_type) or a path"
                )
            try:
                self._bytes = Path(self.path).expanduser().read_bytes()
            except OSError as exc:
                raise InvalidInputError(f"{self.type} {self.path}: cannot read it ({exc.strerror or exc}); check the path") from None
        return self._bytes

    def base64(self) -> str:
        """The bytes as base64 text, encoded once."""
        if self._base64 is None:
            self._base64 = base64.b64encode(self.read()).decode("ascii")
        return self._base64

    def data_url(self) -> str:
        """``data:<media type>;base64,...``, for services that take media inline in a URL field."""
        return f"data:{self.media_type};base64,{self.base64()}"

    def sha256(self) -> str:
        """The SHA-256 of the bytes (of the URL, for a URL part), computed once."""
        if self._sha256 is None:
            content = self.url.encode() if self.data is None and self.path is None and self.url else self.read()
            self._sha256 = hashlib.sha256(content).hexdigest()
        return self._sha256

    def describe(self) -> dict[str, Any]:
        """What logs and cache keys keep: type, media type, size, hash (and the URL of a URL part); never bytes."""
        described: dict[str, Any] = {"type": self.type, "media_type": self.media_type, "sha256": self.sha256()}
        if self.url is not None and self.data is None and self.path is None:
            described["url"] = self.url
        else:
            described["size"] = len(self.read())
        if self.cache:
            described["cache"] = True
        return described


class ImagePart(MediaPart):
    type: Literal["image"] = "image"


class AudioPart(MediaPart):
    type: Literal["audio"] = "audio"


class DocumentPart(MediaPart):
    """A PDF or another document (``File(...)``); ``name`` is the file name services may show the model."""

    type: Literal["document"] = "document"


Part = Annotated[TextPart | ImagePart | AudioPart | DocumentPart | ReasoningPart, Field(discriminator="type")]
MEDIA_PARTS = (ImagePart, AudioPart, DocumentPart)


def _media(cls: type[MediaPart], who: str, source: str | Path | bytes, media_type: str | None, **extra: Any) -> Any:
    """A ``cls`` part from what ``who`` (``Image``, ``Audio``, ``File``: the name errors show) was given."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        fields: dict[str, Any] = {"data": bytes(source)}
    elif isinstance(source, Path):
        fields = {"path": str(source)}
    elif isinstance(source, str):
        fields = {"url": source} if source.startswith(_URL_SCHEMES) or source.startswith("data:") else {"path": source}
    else:
        raise InvalidInputError(
            f"{who}() takes a path, bytes or a URL, got {type(source).__name__} {source!r:.60}"
        )
    if "url" in fields and fields["url"].startswith("data:"):
        fields = _from_data_url(fields["url"])
    elif "path" in fields and not Path(fields["path"]).expanduser().is_file():
        raise InvalidInputError(f"{fields['path']}: no such file; pass an existing path, bytes or a URL")
    fields.update({k: v for k, v in extra.items() if v is not None})
    if media_type is not None:
        fields["media_type"] = media_type
    try:
        part = cls(**fields)
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        message = errors()[0]["msg"].removeprefix("Value error, ") if callable(errors) else str(exc)
        raise InvalidInputError(f"{who}(): {message}") from None
    _check_kind(part, who)
    return part


def _check_kind(part: MediaPart, who: str) -> None:
    """``Image()`` takes images and ``Audio()`` audio: a PDF given to ``Image()`` is refused, naming ``File()``."""
    kind = {"Image": "image", "Audio": "audio"}.get(who)
    media_type = part.media_type or ""
    if kind is None or media_type.startswith(f"{kind}/"):
        return
    use = {"image": "Image", "audio": "Audio"}.get(media_type.split("/", 1)[0], "File")
    article = "an image" if kind == "image" else "audio"
    raise InvalidInputError(
        f"{who}(): {part.source} is {media_type}, not {article}; use {use}(...) for it, "
        f"or pass the right media_type= if the {kind} is mislabelled"
    )


def _from_data_url(url: str) -> dict[str, Any]:
    header, _, payload = url.partition(",")
    if not header.endswith(";base64"):
        raise InvalidInputError("a data: URL must be base64 (data:<type>;base64,...)")
    return {"data": payload, "media_type": header[5:].removesuffix(";base64") or None}


def Image(source: str | Path | bytes, media_type: str | None = None, *, cache: bool = False) -> ImagePart:  # noqa: N802
    """An image from a path, bytes (with ``media_type``, unless PNG/JPEG/GIF/WebP) or a URL."""
    return _media(ImagePart, "Image", source, media_type, cache=cache or None)


def Audio(source: str | Path | bytes, media_type: str | None = None) -> AudioPart:  # noqa: N802
    """Audio (WAV, MP3, ...) from a path, bytes or a URL."""
    return _media(AudioPart, "Audio", source, media_type)


def File(  # noqa: N802
    source: str | Path | bytes, media_type: str | None = None, *, name: str | None = None, cache: bool = False
) -> DocumentPart:
    """A PDF or another document from a path, bytes or a URL; ``name`` defaults to the file's name."""
    if name is None and isinstance(source, (str, Path)) and not str(source).startswith(("data:", *_URL_SCHEMES)):
        name = Path(source).name
    return _media(DocumentPart, "File", source, media_type, name=name, cache=cache or None)


def as_part(value: Any, who: str) -> Any:
    """A part from what a caller passed beside the text: a str becomes a TextPart; a part stays as it is."""
    if isinstance(value, str):
        return TextPart(text=value)
    if isinstance(value, (TextPart, ReasoningPart, MediaPart)):
        return value
    if isinstance(value, Path):
        raise InvalidInputError(f"{who} got the path {value}; wrap it: Image(path), Audio(path) or File(path)")
    raise InvalidInputError(
        f"{who} takes the message text as a str, got {type(value).__name__}: {value!r:.60}; "
        "beside the text it takes parts: Image(...), Audio(...), File(...)"
    )


def content_of(items: tuple[Any, ...], who: str) -> str | list[Any]:
    """A message's content from a caller's text and parts: one str stays a str; anything else a list of parts."""
    if len(items) == 1 and isinstance(items[0], str):
        return items[0]
    if not items:
        raise InvalidInputError(f"{who} takes the message text (a str), and parts such as Image(...) beside it")
    return [as_part(item, who) for item in items]


def part_for_path(path: str) -> MediaPart:
    """An Image, Audio or File part for ``path``, chosen by its extension (what ``pepperpy chat -a`` attaches);
    a file whose extension tells no media type is a File of ``application/octet-stream``."""
    media_type = _guessed(path) or ""
    if media_type.startswith("image/"):
        return Image(path)
    if media_type.startswith("audio/"):
        return Audio(path)
    return File(path, None if media_type else UNKNOWN_TYPE)


def accepts(patterns: frozenset[str], media_type: str) -> bool:
    """True when ``media_type`` matches one of ``patterns`` (``image/png``, ``image/*``, ``*/*``)."""
    major = media_type.split("/", 1)[0]
    return media_type in patterns or f"{major}/*" in patterns or "*/*" in patterns


__all__ = [
    "Audio", "AudioPart", "DocumentPart", "File", "Image", "ImagePart", "MEDIA_PARTS", "MediaPart", "Part",
    "ReasoningPart", "TextPart", "accepts", "as_part", "content_of", "part_for_path",
]
