"""The jinja2 environment variant templates run in (inside the render child process).

Templates come from a CMS, so they are untrusted. jinja2's immutable sandbox already refuses
Python internals (`__class__`, `__globals__`, …), mutation and `range` beyond 100,000; this
module adds what it leaves open: operators whose result can be astronomically large before
any limit sees it. `10 ** 100000000` runs for minutes in C (no signal interrupts it) and
`'a' * 10**12` asks for a terabyte at once, so `**` and `*` are checked *before* they run.
The child process's memory and CPU limits catch everything slower (loops, filters).
"""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_INT_BITS = 65_536  # ~20,000 decimal digits: more than any variant needs
_SEQUENCES = (str, bytes, list, tuple)


class VariantSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, max_output_bytes: int) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False,
                         keep_trailing_newline=False)
        self.max_output_bytes = max_output_bytes
        # No use in a JSON variant; lipsum and cycler only widen what a template can do.
        for name in ("lipsum", "cycler", "joiner"):
            self.globals.pop(name, None)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_product(left, right, self.max_output_bytes)
        return super().call_binop(context, operator, left, right)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_power(base: Any, exponent: Any) -> None:
    if _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1 \
            and abs(base).bit_length() * exponent > MAX_INT_BITS:  # an upper bound of the result
        raise SecurityError(f"{base} ** {exponent} is too large (more than {MAX_INT_BITS} bits)")


def _check_product(left: Any, right: Any, max_bytes: int) -> None:
    if _is_int(left) and _is_int(right):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise SecurityError(f"product is too large (more than {MAX_INT_BITS} bits)")
        return
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, _SEQUENCES) and _is_int(count) \
                and len(sequence) * count > max_bytes:
            raise SecurityError(f"repeating a {type(sequence).__name__} of length "
                                f"{len(sequence)} {count} times is larger than the "
                                f"{max_bytes}-byte variant limit")
