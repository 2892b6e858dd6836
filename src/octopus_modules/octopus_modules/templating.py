"""Parameter templates of device actions.

A device action's ``params`` in a module description are literal YAML values in
which strings may refer to the task's parameters with braces:

* a string that is exactly one ``{expr}`` is replaced by the *value* of the
  expression, keeping its type: ``"{Volume}"`` -> ``250.0``, ``"{Volume * 1000}"``
  -> ``250000.0``, ``"{samples}"`` -> ``["s1", "s2"]``;
* braces inside a longer string are replaced by the text of the value:
  ``"vial_{Position}"`` -> ``"vial_3"``;
* ``{{`` and ``}}`` stand for literal braces;
* dicts and lists are templated element by element; other values are literal.

``expr`` is the safe expression language of :mod:`octopus_modules.expressions`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from octopus_modules.expressions import Expression, ExpressionError, compile_expression

_WHOLE = re.compile(r"^\{([^{}]+)\}$")
_PART = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


@dataclass(frozen=True)
class Template:
    """A compiled parameter value; :meth:`render` fills in the task parameters."""

    value: Any
    names: frozenset[str]

    def render(self, env: Mapping[str, Any]) -> Any:
        return _render(self.value, env)


def compile_template(value: Any, field_name: str) -> Template:
    names: set[str] = set()
    compiled = _compile(value, field_name, names)
    return Template(compiled, frozenset(names))


class _Parts:
    """A string with embedded expressions: literal text and expressions, alternating."""

    def __init__(self, parts: list[str | Expression]) -> None:
        self.parts = parts

    def render(self, env: Mapping[str, Any]) -> str:
        return "".join(p if isinstance(p, str) else str(p.evaluate(env)) for p in self.parts)


def _compile(value: Any, field_name: str, names: set[str]) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _compile(v, f"{field_name}.{k}", names) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile(v, f"{field_name}[{i}]", names) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    whole = _WHOLE.match(value)
    if whole:
        expr = compile_expression(whole.group(1), field_name)
        names.update(expr.names)
        return expr
    if "{" not in value and "}" not in value:
        return value
    parts: list[str | Expression] = []
    pos = 0
    for match in _PART.finditer(value):
        parts.append(value[pos : match.start()])
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        else:
            if not match.group(1).strip():
                raise ExpressionError(f"{field_name}: empty braces in '{value}'")
            expr = compile_expression(match.group(1), field_name)
            names.update(expr.names)
            parts.append(expr)
        pos = match.end()
    rest = value[pos:]
    if "{" in rest or "}" in rest:
        raise ExpressionError(f"{field_name}: unbalanced brace in '{value}'")
    parts.append(rest)
    return _Parts([p for p in parts if p != ""])


def _render(value: Any, env: Mapping[str, Any]) -> Any:
    if isinstance(value, Expression):
        return value.evaluate(env)
    if isinstance(value, _Parts):
        return value.render(env)
    if isinstance(value, dict):
        return {k: _render(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, env) for v in value]
    return value
