"""The model registry, read side: what the worker needs to follow the production model.

On the origin's object store:

    models/<version>/model.txt    LightGBM's text model
    models/<version>/card.json    feature spec, encodings, parameters, window, metrics, sha256
    models/pointers.json          {"production", "shadow", "history": [...], "log": [...]}

Artifacts are written once and never changed; only the pointer document moves
(learning/registry.py writes it). A model is loaded only when its text matches the checksum
in its card.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from decision_worker.errors import ModelError, RegistryError
from object_store.store import ObjectStore, StoreError

POINTERS = "models/pointers.json"


class ModelRegistry:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def _get(self, key: str) -> bytes | None:
        try:
            return self.store.get(key)
        except StoreError as e:
            raise RegistryError(str(e)) from e

    def pointers(self) -> dict[str, Any]:
        raw = self._get(POINTERS)
        if raw is None:
            return {"production": None, "shadow": None, "history": [], "log": []}
        try:
            doc = json.loads(raw)
            doc.setdefault("history", [])
            doc.setdefault("log", [])
            return dict(doc)
        except ValueError as e:
            raise RegistryError(f"{self.store.describe()}{POINTERS} is not JSON: {e}") from e

    def card(self, version: str) -> dict[str, Any]:
        """The card of `version` alone (what a model is, not the model: no checksum check)."""
        raw = self._get(f"models/{version}/card.json")
        if raw is None:
            raise ModelError(f"model {version} is not in the registry at "
                             f"{self.store.describe()}")
        try:
            return dict(json.loads(raw))
        except ValueError as e:
            raise ModelError(f"model {version}: card.json is not JSON: {e}") from e

    def load(self, version: str) -> tuple[str, dict[str, Any]]:
        """The model text and card of `version`, checked against the card's checksum."""
        model = self._get(f"models/{version}/model.txt")
        card_raw = self._get(f"models/{version}/card.json")
        if model is None or card_raw is None:
            raise ModelError(f"model {version} is not in the registry at "
                             f"{self.store.describe()}")
        try:
            card = json.loads(card_raw)
        except ValueError as e:
            raise ModelError(f"model {version}: card.json is not JSON: {e}") from e
        if hashlib.sha256(model).hexdigest() != card.get("model_sha256"):
            raise ModelError(f"model {version}: model.txt does not match its checksum "
                             "(corrupt or replaced)")
        return model.decode(), card
