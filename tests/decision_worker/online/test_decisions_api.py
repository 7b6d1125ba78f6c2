"""Reading back what was decided: `GET /v1/decisions/{user}` and `edgepick explain`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import httpx
import pytest

from decision_worker.api import create_api
from edgepick.explain_cli import explain, explanation_lines
from tests.conftest import Settings

from .test_worker import clicks_on, not_held, session

TOKEN = "admin-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(worker_settings: Settings, serve_app: Callable[..., str]) -> Iterator[httpx.Client]:
    settings = dataclasses.replace(worker_settings, admin_token=TOKEN)
    with httpx.Client(base_url=serve_app(create_api(settings))) as client:
        yield client


def test_decisions_read_back_as_the_edge_reads_them(api, ingest, drain, decision,
                                                    worker_settings) -> None:
    user, stranger = not_held("reader"), not_held("never-seen")
    ingest(clicks_on(user, "winter-camping", 2, "r") + [session(user, "s1")])
    drain()
    answer = api.get(f"/v1/decisions/{user}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "private, no-store"
    placements = answer.json()["placements"]
    hero = decision(user, "hero")
    assert hero is not None and placements["hero"] == {
        "ranked": list(hero.ranked), "model_version": hero.model_version, "arm": hero.arm,
        "decided_at": hero.decided_at}
    assert set(placements) == {"hero", "cta"}  # every published placement
    only = api.get(f"/v1/decisions/{user}", params={"placement": "cta"}, headers=AUTH).json()
    assert list(only["placements"]) == ["cta"]
    assert api.get(f"/v1/decisions/{stranger}", headers=AUTH).json()["placements"]["hero"] is None
    # the CLI reads the same thing
    assert explain(worker_settings, user, "hero") == {"hero": placements["hero"]}
    (line,) = explanation_lines({"hero": placements["hero"]})
    assert line.startswith(f"hero: {', '.join(hero.ranked)}  (model {hero.model_version}, "
                           f"arm {hero.arm}, decided ")


def test_decisions_route_refuses_strangers_and_names_bad_input(api) -> None:
    assert api.get("/v1/decisions/someone").status_code == 401
    assert api.get("/v1/decisions/someone", headers={"authorization": "Bearer x"}).status_code \
        == 401
    bad = api.get("/v1/decisions/someone", params={"placement": "Not An Id"}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_identifier"
    unknown = api.get("/v1/decisions/someone", params={"placement": "nowhere"}, headers=AUTH)
    assert unknown.status_code == 404 and "nowhere" in unknown.json()["detail"]
    control = api.get("/v1/decisions/a%01b", headers=AUTH)
    assert control.status_code == 400 and "control characters" in control.json()["detail"]
