"""Connecting to PostgreSQL with psycopg 3: where a DSN points (without its password), secrets kept out of messages,
and the binary form of a pgvector ``vector``."""

from __future__ import annotations

import os
import re
import struct
from array import array
from typing import Any

URI_PASSWORD = re.compile(r"(://[^:/@\s]*):[^@\s]*@")
KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with each secret, and any password written in a DSN (URI or ``password=``), replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = URI_PASSWORD.sub(r"\1:***@", text)
    return KEYWORD_PASSWORD.sub(r"\1***", text)


def describe(dsn: str) -> str:
    """``postgresql://user@host:port/dbname`` for ``dsn`` (libpq's PG* variables and defaults filling the gaps),
    never the password; the DSN redacted when libpq cannot parse it."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts: dict[str, Any] = conninfo_to_dict(dsn)
    except Exception:
        return redact(dsn)
    host = str(parts.get("host") or os.environ.get("PGHOST") or "localhost")
    port = str(parts.get("port") or os.environ.get("PGPORT") or "5432")
    user = str(parts.get("user") or os.environ.get("PGUSER") or "")
    dbname = str(parts.get("dbname") or os.environ.get("PGDATABASE") or user)
    if host.startswith("/"):
        return f"postgresql://{user}@/{dbname}?host={host}&port={port}"
    return f"postgresql://{user}@{host}:{port}/{dbname}"


def password_of(dsn: str) -> str | None:
    from psycopg.conninfo import conninfo_to_dict

    try:
        return conninfo_to_dict(dsn).get("password") or os.environ.get("PGPASSWORD")
    except Exception:
        return os.environ.get("PGPASSWORD")


class PgVector:
    """A vector in pgvector's binary form: dimension (int16), 0 (int16), then big-endian float32 values."""

    __slots__ = ("data",)

    def __init__(self, values: Any):
        if hasattr(values, "astype"):  # a numpy array: one conversion, no Python loop
            body = values.astype(">f4").tobytes()
            count = len(values)
        else:
            floats = array("f", values)
            if struct.pack("=H", 1) == struct.pack("<H", 1):
                floats.byteswap()
            body, count = floats.tobytes(), len(floats)
        self.data = struct.pack(">HH", count, 0) + body


def register_vector(connection: Any, oid: int) -> None:
    """Send ``PgVector`` values to ``connection`` as the ``vector`` type (whose oid differs between databases)."""
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class VectorDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: PgVector) -> bytes:
            return obj.data

    VectorDumper.oid = oid
    connection.adapters.register_dumper(PgVector, VectorDumper)
