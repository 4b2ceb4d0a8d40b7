"""The style directive: one paragraph merged into the system prompt, so answers read alike
whichever provider serves the conversation.

Merged once: appended to the client's own system prompt (never a second copy of it, never a
second system message when there is one), and left alone when the prompt already carries it.
"""

from __future__ import annotations

from typing import Any

from relay_core.schemas.chat import ChatCompletionRequest, Message

SYSTEM_ROLES = frozenset({"system", "developer"})


def merge_style(request: ChatCompletionRequest, directive: str) -> ChatCompletionRequest:
    directive = directive.strip()
    if not directive:
        return request
    messages = list(request.messages)
    first = messages[0]
    if first.role not in SYSTEM_ROLES:
        messages.insert(0, Message(role="system", content=directive))
    elif directive in first.text():
        return request
    else:
        messages[0] = first.model_copy(update={"content": _appended(first, directive)})
    return request.model_copy(update={"messages": messages})


def _appended(message: Message, directive: str) -> str | list[dict[str, Any]]:
    content = message.content
    if isinstance(content, list):
        return [*content, {"type": "text", "text": directive}]
    if not content:
        return directive
    return f"{content.rstrip()}\n\n{directive}"
