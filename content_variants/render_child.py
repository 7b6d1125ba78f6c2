"""The render child: a process of its own that compiles and renders untrusted templates.

Started by `render.Renderer` once per publish (`python -m content_variants.render_child
CONFIG`), with an empty environment (no secrets to read) and these limits, so no template
can hang or exhaust the publisher:
- memory: `RLIMIT_AS`; an allocation beyond it is a MemoryError inside the template;
- CPU: an ITIMER_PROF timer per request whose signal raises `CpuLimitExceeded` inside the
  template code, so jinja2's traceback rewriting names the template line;
- wall clock: `faulthandler` dumps the stack (template frames included) and exits the process
  if a request outlives `wall_s`, e.g. stuck in one long C call that signals cannot
  interrupt; the parent maps the dumped frame to the template line and kills as last resort.

Requests and answers are length-prefixed JSON frames on stdin/stdout (never pickle: the
parent must not trust what comes back from a process that ran untrusted code):
    {"op": "compile", "id": "t1", "source": "…"} → {"ok": true, "debug": [[tline, pyline], …]}
    {"op": "render", "id": "t1", "context": {…}} → {"ok": true, "body": "<compact JSON>"}
    failures → {"ok": false, "kind": "template" | "output", "line": N | null, "message": "…",
                "limit": true when a CPU or memory limit stopped it}
Only this module, jinja2 and the standard library are imported here.
"""

from __future__ import annotations

import faulthandler
import json
import resource
import signal
import struct
import sys
import traceback
from typing import IO, Any

from jinja2 import Template, TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError

from content_variants.sandbox import VariantSandbox

FRAME_HEADER = struct.Struct(">I")
MAX_REQUEST_BYTES = 16 * 1024 * 1024
MAX_DUMP_BYTES = 1024 * 1024


class CpuLimitExceeded(Exception):
    pass


class OutputTooLarge(Exception):
    pass


def read_frame(stream: IO[bytes], max_bytes: int) -> bytes | None:
    header = stream.read(FRAME_HEADER.size)
    if len(header) < FRAME_HEADER.size:
        return None
    (size,) = FRAME_HEADER.unpack(header)
    if size > max_bytes:
        raise ValueError(f"frame of {size} bytes is larger than {max_bytes}")
    data = stream.read(size)
    return data if len(data) == size else None


def write_frame(stream: IO[bytes], data: bytes) -> None:
    stream.write(FRAME_HEADER.pack(len(data)) + data)
    stream.flush()


class Child:
    def __init__(self, cpu_s: float, wall_s: float, max_bytes: int) -> None:
        self.cpu_s, self.wall_s, self.max_bytes = cpu_s, wall_s, max_bytes
        self.env = VariantSandbox(max_bytes)
        self.templates: dict[str, Template] = {}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        signal.setitimer(signal.ITIMER_PROF, self.cpu_s)
        faulthandler.dump_traceback_later(self.wall_s, exit=True)
        try:
            if request["op"] == "compile":
                return self._compile(request["id"], request["source"])
            return self._render(request["id"], request["context"])
        except CpuLimitExceeded as e:
            return {**_template_failure(e, request["id"],
                                        f"used more than {self.cpu_s:g} s of CPU (stopped)"),
                    "limit": True}
        except MemoryError as e:
            return {**_template_failure(e, request["id"], "ran out of memory (stopped)"),
                    "limit": True}
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            faulthandler.cancel_dump_traceback_later()

    def _compile(self, template_id: str, source: str) -> dict[str, Any]:
        try:
            code = self.env.compile(source, name=template_id, filename=template_id)
        except TemplateSyntaxError as e:
            return {"ok": False, "kind": "template", "line": e.lineno,
                    "message": f"template syntax error: {e.message}"}
        template = self.env.template_class.from_code(self.env, code, self.env.globals)
        self.templates[template_id] = template
        return {"ok": True, "debug": template.debug_info}

    def _render(self, template_id: str, context: dict[str, Any]) -> dict[str, Any]:
        template = self.templates[template_id]
        chunks: list[str] = []
        size = 0
        try:
            for chunk in template.generate(context):
                size += len(chunk.encode("utf-8"))
                if size > self.max_bytes:
                    raise OutputTooLarge
                chunks.append(chunk)
        except OutputTooLarge:
            return _output_failure(f"rendered variant is larger than {self.max_bytes} bytes")
        except SecurityError as e:
            return _template_failure(e, template_id, f"template refused by the sandbox: {e}")
        except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError,
                RecursionError) as e:
            return _template_failure(e, template_id, f"failed: {e}")
        return _as_json_object("".join(chunks), self.max_bytes)


def _as_json_object(text: str, max_bytes: int) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return _output_failure(f"rendered output is not JSON: {e.msg} at output line "
                               f"{e.lineno} column {e.colno}")
    except RecursionError:
        return _output_failure("rendered output is not JSON: nested too deeply")
    if not isinstance(value, dict):
        return _output_failure("rendered output must be a JSON object")
    try:
        # Python reads NaN and Infinity (and 1e400 as Infinity); a browser's JSON.parse does not.
        body = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return _output_failure("rendered output is not JSON: NaN or Infinity is not a number")
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError:
        return _output_failure("rendered output is not UTF-8 text (it holds a lone surrogate)")
    if size > max_bytes:
        return _output_failure(f"rendered variant is larger than {max_bytes} bytes")
    return {"ok": True, "body": body}


def _output_failure(message: str) -> dict[str, Any]:
    return {"ok": False, "kind": "output", "line": None, "message": message}


def _template_failure(error: BaseException, template_id: str, message: str) -> dict[str, Any]:
    """jinja2 rewrites tracebacks so template frames carry the template's name and line."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == template_id]
    line = frames[-1].lineno if frames else getattr(error, "lineno", None)
    return {"ok": False, "kind": "template", "line": line, "message": message}


def _on_cpu_limit(signum: int, frame: object) -> None:
    raise CpuLimitExceeded


def main() -> None:
    config = json.loads(sys.argv[1])
    memory = int(config["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Nothing here writes files but the stack dump on stderr: cap what any write could do.
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_DUMP_BYTES, MAX_DUMP_BYTES))
    signal.signal(signal.SIGPROF, _on_cpu_limit)
    child = Child(float(config["cpu_s"]), float(config["wall_s"]), int(config["max_bytes"]))
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    while True:
        frame = read_frame(requests, MAX_REQUEST_BYTES)
        if frame is None:
            return
        answer = child.handle(json.loads(frame))
        # ASCII: any text survives the pipe, lone surrogates in messages included.
        write_frame(answers, json.dumps(answer).encode("ascii"))


if __name__ == "__main__":
    main()
