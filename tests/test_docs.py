"""The Python examples of ``docs/*.md`` run, so they cannot rot (issue 14, item 16).

Every ```python block is run in a fresh namespace (a block that defines ``async def main()``
without running it has it run), or named in ``NOT_RUN`` with the reason; a new block that is
neither fails the suite.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

# Blocks shown but not run here, by file and the start of their first line, and why.
NOT_RUN = {
    (
        "batch.md",
        "from openai import OpenAI",
    ): "needs a farm and a file: tests/integration/batch/test_sdk.py",
    (
        "providers.md",
        "from relay_core.providers.registry",
    ): "a fragment (top-level await, names from context)",
}


def blocks() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
            line = text.count("\n", 0, m.start()) + 1
            found.append((path.name, line, m.group(1)))
    return found


def skipped(name: str, code: str) -> str | None:
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    return next(
        (why for (f, start), why in NOT_RUN.items() if f == name and first.startswith(start)), None
    )


RUN = [b for b in blocks() if skipped(b[0], b[2]) is None]


@pytest.mark.parametrize(("name", "line", "code"), RUN, ids=[f"{n}:{line}" for n, line, _ in RUN])
def test_the_docs_python_examples_run(name: str, line: int, code: str) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{name}_{line}"}
    exec(compile(code, f"docs/{name}:{line}", "exec"), namespace)
    main = namespace.get("main")
    if inspect.iscoroutinefunction(main) and "asyncio.run(main())" not in code:
        asyncio.run(main())


def test_every_block_not_run_is_still_there() -> None:
    names = {(name, code.lstrip().splitlines()[0]) for name, _, code in blocks() if code.strip()}
    for f, start in NOT_RUN:
        assert any(n == f and first.startswith(start) for n, first in names), (f, start)
