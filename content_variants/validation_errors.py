"""Validation errors in words: the first problem pydantic found, and the line of a YAML key
it concerns, so every content file error reads `file:line: field 'x' <problem>`."""

from __future__ import annotations

import yaml
from pydantic import ValidationError


def describe_validation_error(error: ValidationError) -> str:
    """"field 'x' <problem>" for the first problem pydantic found."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "(file)"
    problem = "missing" if first["type"] == "missing" else \
        str(first["msg"]).removeprefix("Value error, ")
    return f"field '{field}' {problem}"


def first_key(error: ValidationError) -> str:
    loc = error.errors()[0]["loc"]
    return str(loc[0]) if loc else ""


def line_of_key(node: yaml.Node | None, key: str) -> int:
    """1-based line of a top-level key in a YAML mapping node (1 when the key is absent)."""
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            if key_node.value == key:
                return int(key_node.start_mark.line) + 1
    return 1
