"""What a batch file asks of the farm, per model selection: how many lines, and what one
costs on average (its prompt tokens as Relay counts them, its output cap): the body of
``POST /v1/batches/estimate`` that ``relay batch estimate`` sends."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from relay_core.batch.client.estimate import RouteCount
from relay_core.batch.client.prompts import routed_bodies
from relay_core.context.count import count_messages
from relay_core.routing.targets import Selection
from relay_core.schemas.chat import ChatCompletionRequest


@dataclass
class _Sums:
    lines: int = 0
    prompt: int = 0
    capped: int = 0  # lines with an output cap
    cap: int = 0


def route_demand(path: Path, default_model: str | None) -> list[RouteCount]:
    """Per model selection of the file: its line count and mean token costs."""
    sums: dict[Selection, _Sums] = {}
    for route, body in routed_bodies(path, default_model):
        entry = sums.setdefault(route, _Sums())
        entry.lines += 1
        try:
            request = ChatCompletionRequest.model_validate({**body, "model": route.model})
        except ValidationError:  # validation will say; it costs what the others cost
            continue
        entry.prompt += count_messages(request.messages)
        cap = request.output_limit()
        if cap is not None:
            entry.capped += 1
            entry.cap += cap
    return [
        RouteCount(
            model=r.model,
            model_type=r.model_type,
            model_scale=r.model_scale,
            model_name=r.model_name,
            count=s.lines,
            prompt_tokens=round(s.prompt / s.lines, 1),
            max_tokens=round(s.cap / s.capped, 1) if s.capped else None,
        )
        for r, s in sums.items()
    ]
