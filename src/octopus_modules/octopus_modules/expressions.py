"""A tiny, safe arithmetic language for durations and parameter templates.

Module descriptions compute expected durations and device-action parameters from
a task's parameters, e.g. ``"3.7 + Volume / Rate"`` or ``"Time * 60"``. We never
``eval`` description text: the expression is parsed with :mod:`ast` and only the
node types below are accepted.

Grammar (Python syntax, subset):
  * numbers, ``true``/``false`` are not needed: use 1/0; string literals in quotes;
  * names: task parameters and the built-ins the caller binds (``n_samples``, ...);
  * ``+ - * / // % **``, unary ``+ -``, parentheses;
  * comparisons ``< <= > >= == !=`` and ``a if cond else b`` (for piecewise formulas);
  * functions: ``min max abs ceil floor round sqrt log exp clamp(x, lo, hi)``.
Anything else (attributes, subscripts, calls of other names, lambdas, ...) is
rejected when the description is loaded, with the field named.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class ExpressionError(ValueError):
    """An expression is malformed or could not be evaluated; names the field."""


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "ceil": math.ceil,
    "floor": math.floor,
    "round": round,
    "sqrt": math.sqrt,
    "log": math.log,
    "exp": math.exp,
    "clamp": _clamp,
}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_MAX_LENGTH = 500  # descriptions are written by people; long text is a mistake or an attack


@dataclass(frozen=True)
class Expression:
    """A parsed, validated expression; evaluate it with :meth:`evaluate`."""

    text: str
    field: str
    names: frozenset[str]
    _tree: ast.expr = field(repr=False, compare=False)

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        try:
            return _eval(self._tree, env)
        except ExpressionError as exc:
            raise ExpressionError(f"{self.field}: {exc}") from None
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise ExpressionError(f"{self.field}: cannot evaluate '{self.text}': {exc}") from None


def compile_expression(text: str | float | int, field_name: str) -> Expression:
    """Parse ``text`` (or wrap a number) into an :class:`Expression`; raise on bad syntax."""
    if isinstance(text, bool):
        raise ExpressionError(f"{field_name}: expected a number or expression, got a boolean")
    if isinstance(text, (int, float)):
        return Expression(str(text), field_name, frozenset(), ast.Constant(text))
    if not isinstance(text, str):
        raise ExpressionError(
            f"{field_name}: expected a number or expression, got {type(text).__name__}"
        )
    if len(text) > _MAX_LENGTH:
        raise ExpressionError(f"{field_name}: expression longer than {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(f"{field_name}: syntax error in '{text}': {exc.msg}") from None
    names: set[str] = set()
    _check(tree, names, field_name, text)
    return Expression(text, field_name, frozenset(names), tree)


def _check(node: ast.AST, names: set[str], field_name: str, text: str) -> None:
    def bad(what: str) -> ExpressionError:
        return ExpressionError(f"{field_name}: {what} not allowed in '{text}'")

    if isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str)) or isinstance(node.value, bool):
            raise bad(f"constant {node.value!r}")
    elif isinstance(node, ast.Name):
        names.add(node.id)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise bad(f"operator {type(node.op).__name__}")
        _check(node.left, names, field_name, text)
        _check(node.right, names, field_name, text)
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise bad(f"operator {type(node.op).__name__}")
        _check(node.operand, names, field_name, text)
    elif isinstance(node, ast.Compare):
        if any(type(op) not in _COMPARE for op in node.ops):
            raise bad("comparison operator")
        for child in [node.left, *node.comparators]:
            _check(child, names, field_name, text)
    elif isinstance(node, ast.IfExp):
        for child in (node.test, node.body, node.orelse):
            _check(child, names, field_name, text)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise bad("call of anything but " + ", ".join(sorted(FUNCTIONS)))
        if node.keywords:
            raise bad("keyword arguments")
        for arg in node.args:
            _check(arg, names, field_name, text)
    else:
        raise bad(type(node).__name__)


def _eval(node: ast.expr, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise ExpressionError(f"unknown name '{node.id}'")
        return env[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, env), _eval(node.right, env)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ExpressionError("exponent too large")  # keep evaluation cheap and bounded
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, env))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, env)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, env) else node.orelse, env)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return FUNCTIONS[node.func.id](*(_eval(arg, env) for arg in node.args))
    raise ExpressionError(f"unsupported node {type(node).__name__}")  # unreachable after _check
