"""The workflow the tests and the bench run: generate → validate → repair → classify → answer.

``generate`` asks for a JSON object (the simulator answers ``{"answer": <its echo>}``, or prose
at a provider's ``invalid_json_rate``, which the chat path repairs or fails over); ``validate``
wants the answer to say ``final``, which a first draft never does, so every run goes through
``repair`` once; ``classify`` reads the question's topic (the simulator echoes the prompt, so
the label is the one the question names); the answer step depends on the label.
"""

from __future__ import annotations

from typing import Any

FINAL = {
    "type": "object",
    "properties": {"answer": {"type": "string", "pattern": "final"}},
    "required": ["answer"],
}


def support_workflow(model: str = "chat", name: str = "support") -> dict[str, Any]:
    return {
        "name": name,
        "description": "Draft, check and repair a support reply, then answer by topic.",
        "input_schema": {
            "type": "object",
            "properties": {"question": {"type": "string"}},
            "required": ["question"],
        },
        "steps": [
            {
                "name": "generate",
                "kind": "model",
                "model": model,
                "messages": [{"content": "Draft a reply to: {{ input.question }}"}],
                "response_format": {"type": "json_object"},
            },
            {
                "name": "validate",
                "kind": "validate",
                "json_schema": FINAL,
                "next": [{"when": "valid", "to": "classify"}, {"when": "invalid", "to": "repair"}],
            },
            {
                "name": "repair",
                "kind": "model",
                "model": model,
                "max_visits": 2,
                "messages": [
                    {
                        "content": "Write the final reply to: {{ input.question }} "
                        "(the draft failed: {{ steps.validate.error }})"
                    }
                ],
                "response_format": {"type": "json_object"},
                "next": [{"to": "validate"}],
            },
            {
                "name": "classify",
                "kind": "classify",
                "model": model,
                "labels": ["billing", "technical"],
                "default": "technical",
                "messages": [{"content": "Topic of: {{ input.question }}"}],
                "next": [
                    {"when": "label == billing", "to": "billing"},
                    {"when": "always", "to": "technical"},
                ],
            },
            {
                "name": "billing",
                "kind": "transform",
                "template": "BILLING: {{ steps.validate.json.answer }}",
                "next": [{"to": "end"}],
            },
            {
                "name": "technical",
                "kind": "transform",
                "extract": "steps.validate.json.answer",
            },
        ],
    }


# The steps every run of the support workflow visits, in order, for each topic.
SUPPORT_PATH = {
    "billing": ["generate", "validate", "repair", "validate", "classify", "billing"],
    "technical": ["generate", "validate", "repair", "validate", "classify", "technical"],
}
