"""Deciding ahead of time: events in, ranked decisions per user and placement out.

Four rooms, imports flowing one way:
- `ingest/`   the Segment event contract, the events API's ingestion, the event log;
              imports none of the others.
- `ranking/`  what a decision is made of: profiles, features, candidates, popularity,
              retrieval, the ranker interface and the scoring rankers; uses `ingest`'s
              event contract only.
- `online/`   deciding as events arrive: the stream worker, its batches, scheduled
              re-decisions, pinning, forget; uses `ranking` and `ingest`, never `learning`.
- `learning/` learning offline: replay of the event log through `ranking`'s own feature
              definitions, training examples, training, evaluation, the registry's
              promotions; uses `ranking` and `ingest`, never `online`.
Beside them: `keys.py` (every Redis key of this package, with its TTL or bound),
`settings.py`, `errors.py`, and `api.py`, which puts the events API process together.
"""
