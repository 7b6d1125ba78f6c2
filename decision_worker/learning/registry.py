"""Model registry on the origin's storage (a folder, or S3): versioned artifacts and pointers.

    models/<version>/model.txt    LightGBM's text model
    models/<version>/card.json    feature spec, parameters, training window, metrics, sha256
    models/pointers.json          {"production", "shadow", "history": [...], "log": [...]}

Artifacts are written once and never changed; only the pointer document moves. `promote`
moves production only when the candidate beat the production model it was evaluated
against (on the same later window, at training time) on the primary metric and no guardrail
dropped beyond its tolerance, unless forced with a reason, which is logged. `rollback`
returns to the previous production version. One operator at a time is assumed: the pointer
document is read, changed and written whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from decision_worker.learning.model import ModelError
from edge_functions.errors import EdgepickError

POINTERS = "models/pointers.json"
PRIMARY = "ndcg@1"


@dataclass(frozen=True)
class Guardrails:
    auc_drop: float = 0.02  # absolute
    coverage_drop: float = 0.10  # absolute share of the catalog
    diversity_ratio: float = 0.8  # candidate entropy at least this share of production's


class RegistryError(EdgepickError):
    http_status = 409
    error_code = "registry"


class ArtifactStore(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes) -> None: ...

    def describe(self) -> str: ...


class FolderArtifacts:
    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.exists() else None

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers see the old document or the new one, never half

    def describe(self) -> str:
        return f"file://{self.root}"


class S3Artifacts:
    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._s3 = client if client is not None else boto3.client("s3")

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body: bytes = self._s3.get_object(Bucket=self.bucket,
                                              Key=self.prefix + key)["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None
            raise RegistryError(f"s3://{self.bucket}/{self.prefix}{key}: {e}") from e
        except BotoCoreError as e:  # unreachable endpoint, credentials: an error, not a crash
            raise RegistryError(f"s3://{self.bucket}/{self.prefix}{key}: {e}") from e
        return body

    def put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._s3.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)
        except (ClientError, BotoCoreError) as e:
            raise RegistryError(f"write to s3://{self.bucket}/{self.prefix}{key} failed: "
                                f"{e}") from e

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def store_from_url(origin: str) -> ArtifactStore:
    if origin.startswith("file://"):
        return FolderArtifacts(Path(origin[len("file://"):]))
    parts = urlsplit(origin)
    return S3Artifacts(parts.netloc, parts.path)


class Registry:
    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    def pointers(self) -> dict[str, Any]:
        raw = self.store.get(POINTERS)
        if raw is None:
            return {"production": None, "shadow": None, "history": [], "log": []}
        try:
            doc = json.loads(raw)
            doc.setdefault("history", [])
            doc.setdefault("log", [])
            return dict(doc)
        except ValueError as e:
            raise RegistryError(f"{self.store.describe()}/{POINTERS} is not JSON: {e}") from e

    def register(self, version: str, model_text: str, card: dict[str, Any]) -> None:
        """Store a candidate's artifacts and make it the shadow model."""
        card = {**card, "version": version,
                "model_sha256": hashlib.sha256(model_text.encode()).hexdigest()}
        self.store.put(f"models/{version}/model.txt", model_text.encode())
        self.store.put(f"models/{version}/card.json", json.dumps(card, indent=1).encode())
        self._move("shadow", version, "registered")

    def load(self, version: str) -> tuple[str, dict[str, Any]]:
        """The model text and card of `version`, checked against the card's checksum."""
        model = self.store.get(f"models/{version}/model.txt")
        card_raw = self.store.get(f"models/{version}/card.json")
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

    def promote(self, version: str | None = None, force_reason: str | None = None,
                guardrails: Guardrails = Guardrails()) -> str:
        """Move production to `version` (default: the shadow model) if it wins."""
        pointers = self.pointers()
        version = version or pointers.get("shadow")
        if not version:
            raise RegistryError("no candidate: train one first (edgepick train)")
        _, card = self.load(version)
        if force_reason is None:
            refusals = promotion_refusals(card, pointers.get("production"), guardrails)
            if refusals:
                raise RegistryError(f"promotion of {version} refused: " + "; ".join(refusals))
        self._move("production", version, f"forced: {force_reason}" if force_reason else
                   f"won on {PRIMARY}")
        return version

    def rollback(self) -> str | None:
        pointers = self.pointers()
        if not pointers["history"]:
            raise RegistryError("nothing to roll back to: production has no earlier version")
        previous = pointers["history"][-1]
        self._move("production", previous, "rollback", pop_history=True)
        return str(previous) if previous else None

    def _move(self, pointer: str, version: str | None, why: str,
              pop_history: bool = False) -> None:
        doc = self.pointers()
        if pointer == "production":
            if pop_history:
                doc["history"].pop()
            else:
                doc["history"].append(doc.get("production"))
        doc[pointer] = version
        doc["log"].append({"at": dt.datetime.now(dt.UTC).isoformat(), "pointer": pointer,
                           "version": version, "why": why})
        doc["log"] = doc["log"][-200:]
        self.store.put(POINTERS, json.dumps(doc, indent=1).encode())


def promotion_refusals(card: dict[str, Any], production: str | None,
                       guardrails: Guardrails) -> list[str]:
    """Why the candidate of `card` may not replace `production` (empty: it may)."""
    metrics = card.get("metrics", {})
    mine, theirs = metrics.get("candidate"), metrics.get("production")
    if not mine or not theirs:
        return ["its card has no evaluation against production"]
    evaluated_against = card.get("production_version")
    if evaluated_against != production:
        return [f"it was evaluated against {evaluated_against or 'the baseline'}, but "
                f"production is now {production or 'the baseline'}: train again"]
    refusals = []
    if not mine[PRIMARY] > theirs[PRIMARY]:
        refusals.append(f"{PRIMARY} {mine[PRIMARY]:.4f} does not beat production's "
                        f"{theirs[PRIMARY]:.4f}")
    if mine["auc"] < theirs["auc"] - guardrails.auc_drop:
        refusals.append(f"AUC {mine['auc']:.4f} dropped more than {guardrails.auc_drop} "
                        f"below {theirs['auc']:.4f}")
    if mine["coverage"] < theirs["coverage"] - guardrails.coverage_drop:
        refusals.append(f"coverage {mine['coverage']:.2f} dropped more than "
                        f"{guardrails.coverage_drop} below {theirs['coverage']:.2f}")
    if mine["diversity"] < theirs["diversity"] * guardrails.diversity_ratio:
        refusals.append(f"diversity {mine['diversity']:.2f} bits is under "
                        f"{guardrails.diversity_ratio:.0%} of {theirs['diversity']:.2f}")
    return refusals
