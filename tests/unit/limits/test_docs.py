"""docs/limits.md's example runs as written."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

DOC = Path(__file__).parents[3] / "docs" / "limits.md"


async def test_the_usage_example_runs():
    (example,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    namespace: dict[str, object] = {}
    exec(compile(example, str(DOC), "exec"), namespace)
    main = namespace["main"]
    assert inspect.iscoroutinefunction(main)
    await main()
