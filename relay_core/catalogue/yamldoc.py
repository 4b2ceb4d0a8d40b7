"""A YAML catalogue file parsed once, keeping its node tree for line numbers.

``yaml.safe_load`` gives data but forgets where it came from, and silently keeps the last of two
equal keys. Composing first and constructing from the same nodes gives both the data (exactly
what ``safe_load`` would return) and the lines, so every problem can point at its line.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Loc = tuple[str | int, ...]


class YamlSyntaxError(Exception):
    """The text is not YAML. ``line`` is 1-based when known."""

    def __init__(self, problem: str, line: int | None, column: int | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line
        self.column = column


@dataclass(frozen=True)
class DuplicateKey:
    loc: Loc  # the repeated key's path (mapping path + key)
    first_line: int
    line: int


@dataclass(frozen=True)
class YamlDoc:
    data: object
    root: Node | None

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of the deepest node along ``loc`` that exists (1-based)."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            found = _child(node, part)
            if found is None:
                break
            line, node = found
        return line

    def duplicate_keys(self) -> list[DuplicateKey]:
        return list(_duplicates(self.root, (), set())) if self.root is not None else []


def _child(node: Node, part: str | int) -> tuple[int, Node] | None:
    if isinstance(node, MappingNode) and isinstance(part, str):
        for key, value in reversed(node.value):  # YAML keeps the last of equal keys
            if isinstance(key, ScalarNode) and key.value == part:
                return key.start_mark.line + 1, value
    if isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item: Node = node.value[part]
        return item.start_mark.line + 1, item
    return None


def _duplicates(node: Node, loc: Loc, seen: set[int]) -> Iterator[DuplicateKey]:
    if id(node) in seen:  # an alias (*ref) to a node already walked
        return
    seen.add(id(node))
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicates(item, (*loc, index), seen)
    elif isinstance(node, MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            line = key.start_mark.line + 1
            if key.value in first:
                yield DuplicateKey((*loc, key.value), first[key.value], line)
            first.setdefault(key.value, line)
            yield from _duplicates(value, (*loc, key.value), seen)


def parse_yaml(text: str) -> YamlDoc:
    """Parse one YAML document with the safe loader; raise :class:`YamlSyntaxError`."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, text) from None
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, text) from None
    finally:
        loader.dispose()
    return YamlDoc(data, root)


def _syntax_error(exc: yaml.YAMLError, text: str) -> YamlSyntaxError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is None:
            return YamlSyntaxError(problem, None, None)
        return YamlSyntaxError(problem, mark.line + 1, mark.column + 1)
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        before = text[: exc.position]
        column = exc.position - (before.rfind("\n") + 1) + 1
        return YamlSyntaxError(
            f"character {exc.character:#x} is not allowed", before.count("\n") + 1, column
        )
    return YamlSyntaxError(str(exc).splitlines()[0], None, None)
