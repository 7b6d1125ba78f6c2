"""The event log on S3: one JSON Lines object per accepted request (S3 cannot append).

Keys `<prefix>/events/dt=YYYY-MM-DD/events-<host>-<pid>-<unix ns>-<n>.jsonl`: unique per
process and request, sortable by time. The PUT returns only once S3 has stored the object,
so the API answers after the messages are durable, as with the folder log.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import socket
import time
from collections.abc import Iterable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from decision_worker.ingest.event_log import TOMBSTONES, decode_lines, encode_lines, tombstone_tags
from edge_functions.errors import EdgepickError


class EventLogError(EdgepickError):
    http_status = 503
    error_code = "event_log_unavailable"


class S3EventLog:
    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/events" if prefix.strip("/") else "events"
        self._s3 = client if client is not None else boto3.client("s3")
        self._name = f"events-{socket.gethostname()}-{os.getpid()}"
        self._counter = itertools.count()
        self.corrupt_lines = 0

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def append(self, received_at: dt.datetime, messages: Iterable[dict[str, Any]]) -> int:
        data = encode_lines(messages)
        if not data:
            return 0
        key = (f"{self.prefix}/dt={received_at.date().isoformat()}/"
               f"{self._name}-{time.time_ns()}-{next(self._counter)}.jsonl")
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=data,
                                ContentType="application/x-ndjson")
        except (ClientError, BotoCoreError) as e:
            raise EventLogError(f"event log write to s3://{self.bucket}/{key} failed: {e}") from e
        return data.count(b"\n")

    def read_day(self, day: dt.date) -> list[dict[str, Any]]:
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        prefix = f"{self.prefix}/dt={day.isoformat()}/"
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                       Prefix=prefix)
            keys = sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))
            for key in keys:
                body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                self.corrupt_lines += decode_lines(body, seen, out)
        except (ClientError, BotoCoreError) as e:
            raise EventLogError(f"event log read of s3://{self.bucket}/{prefix} failed: "
                                f"{e}") from e
        return out

    def append_tombstones(self, records: list[dict[str, Any]]) -> None:
        key = f"{self.prefix}/{TOMBSTONES}/{self._name}-{time.time_ns()}.jsonl"
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=encode_lines(records),
                                ContentType="application/x-ndjson")
        except (ClientError, BotoCoreError) as e:
            raise EventLogError(f"tombstone write to s3://{self.bucket}/{key} failed: "
                                f"{e}") from e

    def read_tombstones(self) -> set[str]:
        prefix = f"{self.prefix}/{TOMBSTONES}/"
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                       Prefix=prefix)
            keys = sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))
            return tombstone_tags(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
                                  .read() for key in keys)
        except (ClientError, BotoCoreError) as e:
            raise EventLogError(f"tombstone read of s3://{self.bucket}/{prefix} failed: "
                                f"{e}") from e
