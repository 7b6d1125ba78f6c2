"""A placement's decision policy: `_placement.yaml` beside its template.

    kind: row              # banner (default), row or email: the preset the keys below refine
    slots: 5               # how many ranked variants each decision holds (1-8)
    exclude: [click, conversion]   # not offered again once the user did one of these
    max_views: 3           # frequency cap: not offered once viewed this many times (0: none)
    include_default: false # whether the default must be in every ranked list
    exploration: 0.05      # share of decisions whose first slot is drawn at random (0-0.5)
    explore_new: 0.5       # share of those draws given to new variants (< 100 views), 0-1

The presets fit the three kinds of placement edgepick serves:
- `banner` (a hero, a call to action): one variant shown; the list holds 3 so the edge has
  fallbacks should the first be unpublished; offers already converted on are not repeated.
- `row` (an "up next" or "because you watched" row): 8 slots; what the user already
  clicked or converted on is not offered again.
- `email` (a header chosen at send time): 1 slot; converted offers are not repeated, and a
  header seen 3 times is retired for that user.
The default variant is ranked on its score and left out after the `exclude` engagements
like any other (its schedule and locale do not bind it: it is everyone's fallback); when
nothing else is eligible it is the list. `include_default: true` adds it, last, to a list it
did not rank into, consumed or not. Without that the edge still falls back to it by itself
whenever a decision is missing or nothing in it is eligible.

Exploration (decision_worker/ranking/exploration.py): epsilon-greedy on the first slot, half
of the random draws among new variants. A banner or an email shows one variant, so without
exploring nothing but the ranker's favourite is ever shown and nothing else gains evidence:
5 % of their decisions explore. A row shows 5-8 variants per decision, so its greedy list
already spreads impressions: 2 %. What it costs: an explored first slot is almost never what
the user wanted, so hit@1 of served decisions drops by about `exploration` x hit@1 (2 % of it
for a row: 0.300 becomes 0.294), and hit@5 barely moves (the greedy list only shifts down
one slot in those decisions). `exploration: 0` turns it off.

The publisher writes the complete policy (preset and file merged) into the manifest entry of
the placement (`"policy"`, docs/contracts.md); the worker and the offline replay read it
from there (decision_worker/ranking/placement_policy.py), so both apply the same one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from content_variants import variant_yaml
from content_variants.errors import ContentError
from content_variants.validation_errors import describe_validation_error, first_key, line_of_key

SETTINGS_NAME = "_placement.yaml"
ENGAGEMENTS = ("view", "click", "conversion")
MAX_SLOTS = 8  # a decision record ranks at most 8 variants (edge_functions/decision_record.py)

MAX_EXPLORATION = 0.5  # the worker's bound too (placement_policy.py)
PRESETS: dict[str, dict[str, Any]] = {
    "banner": {"slots": 3, "exclude": ["conversion"], "max_views": 0,
               "include_default": False, "exploration": 0.05, "explore_new": 0.5},
    "row": {"slots": MAX_SLOTS, "exclude": ["click", "conversion"], "max_views": 0,
            "include_default": False, "exploration": 0.02, "explore_new": 0.5},
    "email": {"slots": 1, "exclude": ["conversion"], "max_views": 3,
              "include_default": False, "exploration": 0.05, "explore_new": 0.5},
}
KEYS = ("slots", "exclude", "max_views", "include_default", "exploration", "explore_new")


class PlacementSettings(BaseModel):
    """What `_placement.yaml` may say (every key optional; unknown keys refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["banner", "row", "email"] = "banner"
    slots: int | None = Field(default=None, ge=1, le=MAX_SLOTS)
    exclude: tuple[Literal["view", "click", "conversion"], ...] | None = None
    max_views: int | None = Field(default=None, ge=0, le=1000)
    include_default: bool | None = None
    # Strict: `exploration: yes` or `"0.1"` is a mistake, not a number.
    exploration: float | None = Field(default=None, ge=0.0, le=MAX_EXPLORATION, strict=True)
    explore_new: float | None = Field(default=None, ge=0.0, le=1.0, strict=True)

    def policy(self) -> dict[str, Any]:
        """The complete policy: the preset, refined by what the file says."""
        merged = dict(PRESETS[self.kind])
        for key in KEYS:
            value = getattr(self, key)
            if value is not None:
                merged[key] = sorted(set(value), key=ENGAGEMENTS.index) if key == "exclude" \
                    else value
        return {"kind": self.kind, **merged}


def default_policy() -> dict[str, Any]:
    """The policy of a placement without a settings file."""
    return PlacementSettings().policy()


def parse_settings(path: Path, text: str) -> dict[str, Any]:
    """A settings file's complete policy; a ContentError naming file and line otherwise."""
    try:
        data, node = variant_yaml.parse(text)
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark is not None else None
        raise ContentError(path, f"not valid YAML: {e.problem}", line) from e
    except (yaml.YAMLError, ValueError) as e:
        raise ContentError(path, f"not valid YAML: {e}") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ContentError(path, "placement settings must be a mapping of keys", 1)
    try:
        return PlacementSettings.model_validate(data).policy()
    except ValidationError as e:
        raise ContentError(path, describe_validation_error(e),
                           line_of_key(node, first_key(e))) from e
