from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from octopus_modules.expressions import ExpressionError, compile_expression
from octopus_modules.templating import compile_template


def test_arithmetic_functions_and_conditionals() -> None:
    expr = compile_expression("3.7 + Volume / Rate", "f")
    assert expr.names == {"Volume", "Rate"}
    assert expr.evaluate({"Volume": 100, "Rate": 20}) == pytest.approx(8.7)
    assert (
        compile_expression("ceil(V / 1000) if S == 'Ag' else 0", "f").evaluate(
            {"V": 1500, "S": "Ag"}
        )
        == 2
    )
    assert compile_expression("clamp(x, 0, 10) + max(1, 2) ** 2", "f").evaluate({"x": 42}) == 14


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "x.__class__",
        "open('f')",
        "[1, 2]",
        "lambda: 1",
        "x[0]",
        "f(x=1)",
        "2 ** 1000000",
    ],
)
def test_everything_but_the_small_language_is_refused(text: str) -> None:
    with pytest.raises(ExpressionError, match=r"^tasks\.T\.duration_s: "):
        expr = compile_expression(text, "tasks.T.duration_s")
        expr.evaluate({"x": 1})


def test_unknown_name_and_division_by_zero_name_the_field() -> None:
    with pytest.raises(ExpressionError, match=r"^d: unknown name 'y'"):
        compile_expression("y + 1", "d").evaluate({})
    with pytest.raises(ExpressionError, match=r"^d: cannot evaluate"):
        compile_expression("1 / x", "d").evaluate({"x": 0})


@given(
    a=st.floats(-1e6, 1e6, allow_nan=False),
    b=st.floats(0.001, 1e6),
    c=st.integers(-100, 100),
)
def test_agrees_with_python_arithmetic(a: float, b: float, c: int) -> None:
    value = compile_expression("(a - c) * 2 / b + abs(c) - sqrt(b)", "f").evaluate(
        {"a": a, "b": b, "c": c}
    )
    assert value == pytest.approx((a - c) * 2 / b + abs(c) - math.sqrt(b))


def test_templates_keep_types_and_fill_strings() -> None:
    template = compile_template(
        {
            "v": "{Volume}",
            "scaled": "{Volume * 2}",
            "target": "stirrer_{position}",
            "list": ["{sample}", "lit"],
            "braces": "{{x}}",
            "n": 5,
        },
        "params",
    )
    assert template.names == {"Volume", "position", "sample"}
    out = template.render({"Volume": 2.5, "position": 3, "sample": "s1"})
    assert out == {
        "v": 2.5,
        "scaled": 5.0,
        "target": "stirrer_3",
        "list": ["s1", "lit"],
        "braces": "{x}",
        "n": 5,
    }


def test_bad_template_names_field() -> None:
    with pytest.raises(ExpressionError, match=r"^params\.target: unbalanced"):
        compile_template({"target": "a_{x"}, "params")
