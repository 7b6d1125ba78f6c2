"""A placement's `_placement.yaml`: its decision policy, validated at publish and carried to
the worker in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from redis import Redis

from edge_functions.keys import MANIFEST_KEY

BANNER = {"kind": "banner", "slots": 3, "exclude": ["conversion"], "max_views": 0,
          "include_default": False, "exploration": 0.05, "explore_new": 0.5}


def policies(redis: Redis) -> dict[str, object]:
    doc = json.loads(redis.get(MANIFEST_KEY))
    return {p: entry.get("policy") for p, entry in doc["placements"].items()}


def test_settings_refine_a_preset_and_reach_the_manifest(origin_server, redis: Redis,
                                                         publish_content, content: Path,
                                                         write) -> None:
    write("cta/_placement.yaml", "kind: row\nmax_views: 2\nexclude: [conversion, view]\n")
    write("email-header/_placement.yaml", "# the preset as it is\nkind: email\n")
    report = publish_content(origin_server, content)
    assert report.ok, report.failed
    assert policies(redis) == {
        "hero": BANNER,  # no settings file: the banner preset
        "cta": {"kind": "row", "slots": 8, "exclude": ["view", "conversion"], "max_views": 2,
                "include_default": False, "exploration": 0.02, "explore_new": 0.5},
        "email-header": {"kind": "email", "slots": 1, "exclude": ["conversion"],
                         "max_views": 3, "include_default": False, "exploration": 0.05,
                         "explore_new": 0.5}}
    # a policy change alone is a change of the manifest
    write("cta/_placement.yaml", "kind: row\nslots: 5\ninclude_default: true\n"
                                 "exploration: 0.1\nexplore_new: 0\n")
    again = publish_content(origin_server, content)
    assert again.ok and policies(redis)["cta"] == {
        "kind": "row", "slots": 5, "exclude": ["click", "conversion"], "max_views": 0,
        "include_default": True, "exploration": 0.1, "explore_new": 0.0}


@pytest.mark.parametrize(("text", "where", "problem"), [
    ("kind: row\nslot: 3\n", 2, "field 'slot' Extra inputs are not permitted"),
    ("kind: row\nslots: 20\n", 2, "field 'slots' Input should be less than or equal to 8"),
    ("kind: carousel\n", 1, "field 'kind' Input should be 'banner', 'row' or 'email'"),
    ("exclude: [click, share]\n", 1, "field 'exclude.1' Input should be 'view', 'click' or "
                                     "'conversion'"),
    ("max_views: -1\n", 1, "field 'max_views' Input should be greater than or equal to 0"),
    ("- slots\n", 1, "placement settings must be a mapping of keys"),
    ("slots: [\n", 2, "not valid YAML"),
    ("kind: row\nexploration: 0.8\n", 2,
     "field 'exploration' Input should be less than or equal to 0.5"),
    ("exploration: yes\n", 1, "field 'exploration' Input should be a valid number"),
    ("slots: 2\nexplore_new: -0.1\n", 2,
     "field 'explore_new' Input should be greater than or equal to 0"),
])
def test_a_bad_settings_file_fails_the_publish_with_file_and_line(
        origin_server, redis: Redis, publish_content, content: Path, write, text: str,
        where: int, problem: str) -> None:
    path = write("cta/_placement.yaml", text)
    report = publish_content(origin_server, content)
    assert not report.ok
    assert any(line.startswith(f"{path}:{where}: {problem}") for line in report.failed), \
        report.failed
    assert "cta" not in policies(redis)  # the placement was not published with a bad policy
    assert policies(redis)["hero"] == BANNER  # its neighbours were
