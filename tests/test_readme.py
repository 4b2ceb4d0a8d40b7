"""The README's examples, run against a real farm (Redis, a worker, the API, the simulator
serving the demo catalogue), so they cannot rot.

Every fenced block of README.md is either run here or named in ``NOT_RUN`` with the reason; a
new block that is neither fails the suite, so an example is never silently left untested.
The farm listens on a free port: ``127.0.0.1:8000`` in the examples is rewritten to it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay_core.catalogue.demo import demo_catalogue
from relay_core.settings import Settings
from relay_sim.config import SimConfig
from relay_sim.server import SimServer
from tests.support.farm import REDIS_URL, Farm, require_redis, running_farm

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEFAULT_API = "http://127.0.0.1:8000"

# Blocks shown but not run here, by the start of their first line, and why.
NOT_RUN = {
    "make up ": "tests/integration/ops/test_up_e2e.py runs `relay up` from an empty directory",
    ".venv/bin/relay config check relay.yaml": "needs the reader's own relay.yaml",
    "relay api --host": "starts long-running servers",
    "cp deploy/env.example .env": "needs a Docker engine (tests/security checks the compose file)",
}


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int

    @property
    def first(self) -> str:
        return self.code.strip().splitlines()[0].strip()


def blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    found = []
    for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        found.append(Block(m.group(1), m.group(2), text[: m.start()].count("\n") + 1))
    return found


def excused(block: Block) -> bool:
    return any(block.first.startswith(start) for start in NOT_RUN)


def runnable() -> list[Block]:
    return [b for b in blocks() if not excused(b)]


def test_the_readme_opens_with_make_up_then_make_test() -> None:
    first = blocks()[0]
    commands = [ln.split("#")[0].strip() for ln in first.code.strip().splitlines()]
    assert commands == ["make up", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^up:.*\n\t\.venv/bin/relay up$", makefile, re.MULTILINE)
    assert re.search(r"^test:.*\n\t\$\(PY\) -m pytest", makefile, re.MULTILINE)


def test_every_block_is_run_or_excused() -> None:
    stale = [s for s in NOT_RUN if not any(b.first.startswith(s) for b in blocks())]
    assert not stale, f"NOT_RUN names blocks README.md no longer has: {stale}"
    for b in runnable():
        assert b.lang in ("python", "bash"), f"README.md:{b.line}: a {b.lang!r} block"


@dataclass
class Env:
    farm: Farm
    cwd: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def demo_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """The farm ``relay up`` runs on a fresh machine: the demo catalogue on the simulator."""
    require_redis()
    tmp = tmp_path_factory.mktemp("readme")
    with SimServer(SimConfig.from_catalogue(demo_catalogue("http://sim.invalid"))) as sim:
        settings = Settings(
            demo=True,
            sim_url=sim.url,
            redis_url=REDIS_URL,
            key_prefix=f"rt{uuid.uuid4().hex[:10]}",
            storage_dir=tmp / "files",
            data_dir=tmp / "data",
        )
        with running_farm(settings, sim.url, workers=1) as farm:
            env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
            bin_dir = str(Path(sys.executable).parent)
            env.update(
                PATH=os.pathsep.join([bin_dir, env.get("PATH", "")]),
                RELAY_API_URL=farm.url,
                RELAY_DEMO="1",
                RELAY_SIM_URL=sim.url,
                RELAY_REDIS_URL=REDIS_URL,
                RELAY_KEY_PREFIX=settings.key_prefix,
                RELAY_DATA_DIR=str(settings.data_dir),
                COLUMNS="160",
            )
            yield Env(farm, tmp, env)


def _run(argv: list[str], demo: Env) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=demo.cwd, env=demo.env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("block", runnable(), ids=lambda b: f"README.md:{b.line}")
def test_readme_example_runs(block: Block, demo_farm: Env) -> None:
    code = block.code.replace(DEFAULT_API, demo_farm.farm.url)
    if block.lang == "python":
        done = _run([sys.executable, "-c", code], demo_farm)
    else:
        if "curl " in code and shutil.which("curl") is None:
            pytest.skip("curl is not installed")  # CI images have it; the SDK block covers HTTP
        done = _run(["bash", "-euo", "pipefail", "-c", code], demo_farm)
    assert done.returncode == 0, f"README.md:{block.line}\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip(), f"README.md:{block.line} printed nothing"
    if "chat" in code or "OpenAI(" in code:
        assert "sim:" in done.stdout  # an answer from a simulated provider
    if "relay batch submit" in code:
        answers = [
            json.loads(ln) for ln in (demo_farm.cwd / "answers.jsonl").read_text().splitlines()
        ]
        assert len(answers) == 100
        assert {a["response"]["status_code"] for a in answers} == {200}
        assert {a["custom_id"] for a in answers} == {f"line-{i}" for i in range(1, 101)}
