"""Render a variant to JSON bytes in jinja2's sandbox.

Templates come from a CMS, so they are untrusted: the sandbox refuses attribute access to
Python internals (`__class__`, `__globals__`, …), the environment is immutable (no mutating
`append`), undefined names are errors, and output is cut off at the size limit while it is
being generated rather than after. The output must parse as a JSON object; it is stored in
compact form, and its SHA-256 is the object's content address.
"""

from __future__ import annotations

import hashlib
import json
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from content_variants.catalog import VariantSpec
from content_variants.errors import ContentError

DIGEST_HEX_CHARS = 16


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


def variant_object_key(placement: str, variant: str, digest: str) -> str:
    return f"content/{placement}/variant-{variant}.{digest}.json"


class Renderer:
    """One sandboxed environment for a publish run; templates compiled once each."""

    def __init__(self, max_bytes: int) -> None:
        self._env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                                  keep_trailing_newline=False)
        self._max_bytes = max_bytes

    def compile(self, path: Path) -> Template:
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ContentError(path, f"cannot read template: {e}") from e
        try:
            code = self._env.compile(source, name=path.name, filename=str(path))
        except TemplateSyntaxError as e:
            raise ContentError(path, f"template syntax error: {e.message}", e.lineno) from e
        return self._env.template_class.from_code(self._env, code, self._env.globals)

    def render(self, template: Template, template_path: Path, placement: str,
               variant_path: Path, spec: VariantSpec) -> RenderedVariant:
        context: dict[str, Any] = {"placement": placement,
                                   "variant": spec.model_dump(mode="json")}
        chunks: list[str] = []
        size = 0
        try:
            for chunk in template.generate(context):
                size += len(chunk.encode("utf-8"))
                if size > self._max_bytes:
                    raise ContentError(variant_path, f"rendered variant is larger than "
                                                     f"{self._max_bytes} bytes")
                chunks.append(chunk)
        except SecurityError as e:
            raise ContentError(template_path, f"template refused by the sandbox: {e}",
                               _template_line(e, template_path)) from e
        except TemplateError as e:
            raise ContentError(template_path, f"rendering {variant_path.name} failed: {e}",
                               _template_line(e, template_path)) from e
        except (ArithmeticError, TypeError, ValueError) as e:
            raise ContentError(template_path, f"rendering {variant_path.name} failed: {e}",
                               _template_line(e, template_path)) from e
        text = "".join(chunks)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise ContentError(variant_path, f"rendered output is not JSON: {e.msg} at "
                                             f"output line {e.lineno} column {e.colno}") from e
        if not isinstance(value, dict):
            raise ContentError(variant_path, "rendered output must be a JSON object")
        body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(body) > self._max_bytes:
            raise ContentError(variant_path, f"rendered variant is larger than "
                                             f"{self._max_bytes} bytes")
        digest = hashlib.sha256(body).hexdigest()[:DIGEST_HEX_CHARS]
        return RenderedVariant(placement, spec, body, digest)


def _template_line(error: BaseException, template_path: Path) -> int | None:
    """jinja2 rewrites tracebacks so template frames carry the template's file and line."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if f.filename == str(template_path)]
    return frames[-1].lineno if frames else getattr(error, "lineno", None)
