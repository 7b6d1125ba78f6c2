"""Render variants to JSON bytes, in a child process that untrusted templates cannot escape.

Templates come from a CMS. They run in jinja2's immutable sandbox (`sandbox.py`) inside a
render child (`render_child.py`) with limits on memory, CPU time and wall-clock time, started
once per publish and restarted only when a template got it killed. Output is cut off at the
size limit while it is generated, must parse as a JSON object, and is stored compact; its
SHA-256 is the object's content address. Every failure is one `file:line: reason` error
naming the template line (or the variant) to fix.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Self

import content_variants
from content_variants.content_folder import TemplateSource, VariantSpec
from content_variants.errors import ContentError, PublishTimeout
from content_variants.limits import PublishLimits
from content_variants.object_keys import DIGEST_HEX_CHARS, variant_object_key
from content_variants.render_child import FRAME_HEADER, write_frame

# Answers are a body of at most max_variant_bytes (JSON-escaped) or a short message.
ANSWER_OVERHEAD = 64 * 1024
KILL_GRACE_S = 2.0
_DUMPED_FRAME = re.compile(r'File "(t\d+)", line (\d+)')


@dataclass(frozen=True)
class RenderedVariant:
    placement: str
    spec: VariantSpec
    body: bytes
    digest: str

    @property
    def object_key(self) -> str:
        """The content-addressed origin key (and URL path) of this rendering."""
        return variant_object_key(self.placement, self.spec.id, self.digest)


@dataclass
class _Compiled:
    id: str
    debug: list[tuple[int, int]]  # (template line, generated-code line), as jinja2 keeps it
    error: tuple[Path, str, int | None] | None = None  # why it is not rendered any more


@dataclass
class _ChildProcess:
    process: subprocess.Popen[bytes]
    stderr: IO[bytes]
    compiled: set[str] = field(default_factory=set)


class Renderer:
    """The render child of one publish. Close it (or use `with`) when the publish is done."""

    def __init__(self, limits: PublishLimits) -> None:
        self.limits = limits
        self._templates: dict[str, _Compiled] = {}  # by the template's SHA-256
        self._child: _ChildProcess | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def render(self, template: TemplateSource, placement: str, spec: VariantSpec,
               where: str, deadline: float | None = None) -> RenderedVariant:
        """Render `spec` with `template`. `where` ("file:line" of the variant) prefixes
        failures that are the variant's, not the template's. Past `deadline` (monotonic) the
        whole publish stops with PublishTimeout."""
        compiled = self._compile(template, deadline)
        context = {"placement": placement, "variant": spec.model_dump(mode="json")}
        answer = self._ask({"op": "render", "id": compiled.id, "context": context},
                           compiled, deadline)
        if not answer.get("ok"):
            failure = self._failure(answer, template, where, f"rendering {_name(where)} ")
            if answer.get("limit"):
                # One runaway template must not spend the whole publish's time budget on
                # every variant of its placement: the rest are refused at once.
                reason = f"not rendered: the template hit its limits rendering {_name(where)}"
                compiled.error = (template.path, reason, failure.line)
            raise failure
        body = str(answer["body"]).encode("utf-8")
        if len(body) > self.limits.max_variant_bytes:  # the child said it checked; make sure
            raise ContentError(where, f"rendered variant is larger than "
                                      f"{self.limits.max_variant_bytes} bytes")
        digest = hashlib.sha256(body).hexdigest()[:DIGEST_HEX_CHARS]
        return RenderedVariant(placement, spec, body, digest)

    def _compile(self, template: TemplateSource, deadline: float | None) -> _Compiled:
        key = hashlib.sha256(template.text.encode("utf-8")).hexdigest()
        compiled = self._templates.get(key)
        if compiled is None:
            compiled = _Compiled(f"t{len(self._templates)}", [])
            self._templates[key] = compiled
        if compiled.error is not None:
            raise ContentError(*compiled.error)
        child = self._running_child()
        if compiled.id not in child.compiled:
            answer = self._ask({"op": "compile", "id": compiled.id, "source": template.text},
                               compiled, deadline)
            if not answer.get("ok"):
                failure = self._failure(answer, template, "", "")
                compiled.error = (template.path, str(answer.get("message", "failed")),
                                  failure.line)
                raise failure
            compiled.debug = [(int(a), int(b)) for a, b in answer["debug"]]
            child.compiled.add(compiled.id)
        return compiled

    def _failure(self, answer: dict[str, Any], template: TemplateSource, where: str,
                 doing: str) -> ContentError:
        message = str(answer.get("message", "failed"))
        if answer.get("kind") == "output":
            return ContentError(where, message)
        line = answer.get("line")
        return ContentError(template.path, f"{doing}{message}".strip(),
                            int(line) if isinstance(line, int) else None)

    def _ask(self, request: dict[str, Any], compiled: _Compiled,
             deadline: float | None) -> dict[str, Any]:
        if deadline is not None and time.monotonic() > deadline:
            raise PublishTimeout(self.limits.publish_timeout_s)
        child = self._running_child()
        assert child.process.stdin is not None and child.process.stdout is not None
        wait_s = self.limits.render_wall_s + KILL_GRACE_S
        timed_out_publish = False
        if deadline is not None and deadline - time.monotonic() < wait_s:
            wait_s, timed_out_publish = max(deadline - time.monotonic(), 0.0), True
        try:
            # ASCII: variant data that is not Unicode text (a lone surrogate from a CMS's
            # JSON) is the child's to refuse, not a failure to send it.
            write_frame(child.process.stdin, json.dumps(request).encode("ascii"))
            raw = _read_frame_before(child.process.stdout.fileno(), time.monotonic() + wait_s,
                                     self.limits.max_variant_bytes * 6 + ANSWER_OVERHEAD)
            if raw is not None:
                answer: dict[str, Any] = json.loads(raw)
                return answer
        except (OSError, ValueError):
            pass  # a dead or misbehaving child: handled below like one that hangs
        dump = self._stop_child()
        if timed_out_publish and deadline is not None and time.monotonic() >= deadline:
            raise PublishTimeout(self.limits.publish_timeout_s)
        return {"ok": False, "kind": "template", "line": self._dumped_line(dump, compiled),
                "message": f"took longer than {self.limits.render_wall_s:g} s (stopped)",
                "limit": True}

    def _dumped_line(self, dump: str, compiled: _Compiled) -> int | None:
        """The template line of the innermost template frame faulthandler dumped."""
        for template_id, code_line in _DUMPED_FRAME.findall(dump):
            if template_id == compiled.id:
                for template_line, generated_line in reversed(compiled.debug):
                    if generated_line <= int(code_line):
                        return template_line
                return 1
        return None

    def _running_child(self) -> _ChildProcess:
        if self._child is None or self._child.process.poll() is not None:
            if self._child is not None:
                self._stop_child()
            self._child = _start_child(self.limits)
        return self._child

    def _stop_child(self) -> str:
        """Kill the child (if it still runs) and return what it wrote on stderr."""
        child, self._child = self._child, None
        if child is None:
            return ""
        if child.process.poll() is None:
            child.process.kill()
        child.process.wait()
        for stream in (child.process.stdin, child.process.stdout):
            if stream is not None:
                stream.close()
        child.stderr.seek(0)
        dump = child.stderr.read(256 * 1024).decode("utf-8", "replace")
        child.stderr.close()
        return dump

    def close(self) -> None:
        child = self._child
        if child is not None and child.process.stdin is not None:
            try:
                child.process.stdin.close()  # end of requests: the child exits by itself
                child.process.wait(timeout=KILL_GRACE_S)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._stop_child()


def _start_child(limits: PublishLimits) -> _ChildProcess:
    config = {"cpu_s": limits.render_cpu_s, "wall_s": limits.render_wall_s,
              "memory_bytes": limits.render_memory_mb * 1024 * 1024,
              "max_bytes": limits.max_variant_bytes}
    package_root = str(Path(content_variants.__file__).resolve().parent.parent)
    # No inherited environment: nothing a sandbox escape could read (secrets, credentials).
    env = {"PYTHONPATH": package_root, "PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C.UTF-8"}
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the child, in _stop_child)
    process = subprocess.Popen(
        [sys.executable, "-m", "content_variants.render_child", json.dumps(config)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env, cwd="/",
        close_fds=True)
    return _ChildProcess(process, stderr)


def _read_frame_before(fd: int, deadline: float, max_bytes: int) -> bytes | None:
    """One frame from `fd`, or None if the child closes, hangs past `deadline`, or sends
    more than `max_bytes`."""
    header = _read_exactly(fd, FRAME_HEADER.size, deadline)
    if header is None:
        return None
    (size,) = FRAME_HEADER.unpack(header)
    return None if size > max_bytes else _read_exactly(fd, size, deadline)


def _read_exactly(fd: int, size: int, deadline: float) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0.0))
        if not ready:
            return None
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _name(where: str) -> str:
    """`content/hero/spring.yaml:1` → `spring.yaml`; `publish[0]` stays."""
    return os.path.basename(where.rsplit(":", 1)[0]) if where else "variant"

