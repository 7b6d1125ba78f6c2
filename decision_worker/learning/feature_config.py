"""The feature configuration: which identify traits and which context signals a model may
read. A YAML file given to `edgepick train --features FILE` (or named by
`EDGEPICK_FEATURES`), every key optional:

    traits:
      plan: categorical                  # its most frequent values, the rest "(other)"
      age_band: {kind: categorical, max_categories: 8}
      lifetime_value: numeric
    context: [device, hour, source, locale]   # the default: all four
    content: [category]                       # the default: the variant's category

A trait must be in the privacy allow-list (`EDGEPICK_TRAITS`): no other trait is ever
stored, so naming one is a mistake, refused with its name before anything is read. A
categorical trait keeps at most `max_categories` values (default `MAX_CATEGORIES`, 32): the
most frequent in the training rows among those at least 10 distinct users have; rarer ones
and values never seen become "(other)".
The variant's category (`content`) is what lets trees tie a trait to what users click
("plan pro clicks trail running"): it keeps its `MAX_CONTENT_CATEGORIES` (64) most frequent
categories. Without a file a model reads no trait and every context and content signal.

The configuration goes into the model card (`feature_config`) beside what training made
of it (feature_fit.py: the columns read, their categories, the columns dropped).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from decision_worker.errors import FeatureConfigError
from decision_worker.ranking.feature_spec import CONTENT_SIGNALS, CONTEXT_SIGNALS
from decision_worker.ranking.trait_columns import CATEGORICAL, NUMERIC

MAX_CATEGORIES = 32
MAX_CONTENT_CATEGORIES = 64
KEYS = ("traits", "context", "content")
MAX_CATEGORIES_LIMIT = 1000
TRAIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # as LightGBM names columns


@dataclass(frozen=True)
class TraitDeclaration:
    trait: str
    kind: str = CATEGORICAL
    max_categories: int = MAX_CATEGORIES
    line: int | None = None  # where the file declares it (for messages)


@dataclass(frozen=True)
class FeatureConfig:
    traits: tuple[TraitDeclaration, ...] = ()
    context: tuple[str, ...] = tuple(CONTEXT_SIGNALS)
    source: str = "the default feature configuration"
    content: tuple[str, ...] = tuple(CONTENT_SIGNALS)

    def check_traits(self, allowed: Iterable[str]) -> None:
        """Refuse a trait outside the privacy allow-list, naming it."""
        kept = sorted(allowed)
        for declared in self.traits:
            if declared.trait not in kept:
                raise FeatureConfigError(
                    f"{self._where(declared.line)}trait '{declared.trait}' is not a trait "
                    f"edgepick keeps (EDGEPICK_TRAITS: {', '.join(kept)}): no profile holds "
                    "it, so it cannot be a feature")

    def card(self) -> dict[str, Any]:
        return {"traits": {t.trait: {"kind": t.kind, **(
                    {"max_categories": t.max_categories} if t.kind == CATEGORICAL else {})}
                           for t in self.traits},
                "context": list(self.context), "content": list(self.content)}

    def _where(self, line: int | None) -> str:
        return f"{self.source}:{line}: " if line else f"{self.source}: "


DEFAULT_FEATURES = FeatureConfig()  # no trait, every context signal


def load_feature_config(path: Path, allowed: Iterable[str]) -> FeatureConfig:
    """The file's configuration, checked against the allow-list; one error naming the file
    and line of the first problem otherwise."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise FeatureConfigError(f"{path}: cannot read the feature configuration: {e}") from e
    config = parse_feature_config(text, str(path))
    config.check_traits(allowed)
    return config


def parse_feature_config(text: str, source: str) -> FeatureConfig:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise FeatureConfigError(f"{where}: not valid YAML: "
                                 f"{getattr(e, 'problem', None) or e}") from e
    if data is None:
        return FeatureConfig(source=source)
    fail = _Failer(source)
    if not isinstance(data, dict):
        fail(f"a feature configuration is a mapping with the keys {', '.join(KEYS)}", 1)
    lines = _key_lines(node)
    for key in data:
        if key not in KEYS:
            fail(f"unknown key '{key}' (use {', '.join(KEYS)})", lines.get(key))
    traits = _traits(data.get("traits"), _key_lines(_value_of(node, "traits")), fail,
                     lines.get("traits"))
    return FeatureConfig(
        traits, _signals("context", data.get("context", list(CONTEXT_SIGNALS)),
                         tuple(CONTEXT_SIGNALS), fail, lines.get("context")), source,
        _signals("content", data.get("content", list(CONTENT_SIGNALS)),
                 tuple(CONTENT_SIGNALS), fail, lines.get("content")))


def _traits(raw: Any, lines: dict[Any, int], fail: _Failer,
            line: int | None) -> tuple[TraitDeclaration, ...]:
    if raw is None:
        return ()
    if isinstance(raw, list):
        raw = {name: CATEGORICAL for name in raw}
    if not isinstance(raw, dict):
        fail("traits: a mapping of trait name to categorical or numeric", line)
    out = []
    for name, spec in raw.items():
        at = lines.get(name, line)
        if not isinstance(name, str) or not TRAIT_NAME.fullmatch(name):
            fail(f"trait name {name!r}: letters, digits, '_', '.', '-' (at most 64)", at)
        spec = {"kind": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, dict) or set(spec) - {"kind", "max_categories"}:
            fail(f"trait '{name}': categorical, numeric, or {{kind, max_categories}}", at)
        kind = spec.get("kind", CATEGORICAL)
        if kind not in (CATEGORICAL, NUMERIC):
            fail(f"trait '{name}': kind {kind!r} is not categorical or numeric", at)
        limit = spec.get("max_categories", MAX_CATEGORIES)
        if isinstance(limit, bool) or not isinstance(limit, int) or \
                not 1 <= limit <= MAX_CATEGORIES_LIMIT:
            fail(f"trait '{name}': max_categories must be 1-{MAX_CATEGORIES_LIMIT}", at)
        out.append(TraitDeclaration(name, kind, limit, at))
    return tuple(out)


def _signals(key: str, raw: Any, known: tuple[str, ...], fail: _Failer,
             line: int | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        fail(f"{key}: a list of signals ({', '.join(known)})", line)
    unknown = [s for s in raw if s not in known]
    if unknown:
        fail(f"{key} signal '{unknown[0]}' is not one of {', '.join(known)}", line)
    return tuple(s for s in known if s in raw)


class _Failer:
    def __init__(self, source: str) -> None:
        self.source = source

    def __call__(self, message: str, line: int | None) -> NoReturn:
        where = f"{self.source}:{line}" if line else self.source
        raise FeatureConfigError(f"{where}: {message}")


def _value_of(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v  # type: ignore[no-any-return]
    return None


def _key_lines(node: yaml.Node | None) -> dict[Any, int]:
    """Key → line (1-based) of a mapping node's keys."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in node.value
            if isinstance(k, yaml.ScalarNode)}
