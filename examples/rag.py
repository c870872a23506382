"""Retrieval: add notes to the embedded local store and ask questions about them, offline."""

import asyncio
import tempfile
from pathlib import Path

from pepperpy import PepperPy

NOTES = """# Project notes

The PepperPy team meets every Tuesday at 10:00 in the Lisbon office.

The release checklist lives in docs/release.md and must be signed off by Ana.

Our CI runs on two cores and must finish within 90 minutes.
"""


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        notes = Path(folder) / "notes.md"
        notes.write_text(NOTES)
        pepper = PepperPy().with_llm("local", temperature=0, max_tokens=60).with_rag("local", path=Path(folder) / "store.sqlite3")
        async with pepper:
            chunks = await pepper.rag.add([notes, "Ana is the release manager."], chunk_size=120, chunk_overlap=0)
            print(f"stored {len(chunks)} chunks")
            answer = await pepper.ask("When does the team meet?", k=2)
            print("Q: When does the team meet?")
            print("A:", answer.content.strip())
            for source in answer.sources:
                print(f"  source {source.document.id.rsplit('/', 1)[-1]} (score {source.score:.2f})")


if __name__ == "__main__":
    asyncio.run(main())
