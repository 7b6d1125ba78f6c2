"""Parsing a variant file's YAML (or JSON, a subset of it) with bounded work.

PyYAML's safe loader builds Python values only, but it expands aliases: nine nested levels of
`&a [*b, *b, …]` (the "billion laughs") grew a publisher to 2.8 GB before it died. Variant
files have no use for anchors, aliases or merge keys (`<<`), so they are refused where they
appear, and nesting is bounded, which keeps parse time and memory linear in the file size
(itself bounded by EDGEPICK_MAX_SOURCE_BYTES).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError

MAX_DEPTH = 32


class _StrictLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise ComposerError(None, None, "anchors and aliases (&name, *name, <<) are not "
                                            "allowed", event.start_mark)
        if self._depth >= MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                event.start_mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self._depth -= 1
        assert node is not None
        return node


def parse(text: str) -> tuple[Any, yaml.Node | None]:
    """The value of a one-document YAML text and its node tree (for line numbers).

    Raises yaml.YAMLError (MarkedYAMLError with the line where it can) or ValueError (a
    scalar that does not convert, such as an impossible date or a 10,000-digit integer).
    """
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        value = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return value, node
