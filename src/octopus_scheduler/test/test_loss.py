"""Loss functions: the documented formula, selection by name, errors naming the field."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from octopus_scheduler.service.loss import LOSS_FUNCTIONS, make_loss

UV_TARGET = {
    "lambda_max": {"target": 520.0, "weight": 2.0},
    "fwhm": {"target": 60.0, "weight": 1.0},
    "intensity": {"target": 1.0, "weight": 1.0},
}


def test_zero_on_target_and_documented_formula() -> None:
    loss = make_loss(UV_TARGET)
    assert loss({"lambda_max": 520.0, "fwhm": 60.0, "intensity": 1.0}) == 0.0
    # 10 % off in position only: 2 * 0.1^2 / (2 + 1 + 1)
    assert loss({"lambda_max": 572.0, "fwhm": 60.0, "intensity": 1.0}) == pytest.approx(0.005)
    # every term 10 % off: (2 + 1 + 1) * 0.01 / 4
    off = {"lambda_max": 468.0, "fwhm": 66.0, "intensity": 0.9}
    assert loss(off) == pytest.approx(0.01)
    absolute = make_loss(UV_TARGET, function="absolute")
    assert absolute(off) == pytest.approx(0.1)


def test_relative_scale_makes_units_comparable() -> None:
    loss = make_loss({"lambda_max": {"target": 500}, "intensity": {"target": 2}})
    nm_miss = loss({"lambda_max": 550, "intensity": 2})  # 10 % in nanometres
    abs_miss = loss({"lambda_max": 500, "intensity": 2.2})  # 10 % in absorbance
    assert nm_miss == pytest.approx(abs_miss)


def test_zero_target_uses_unit_scale() -> None:
    loss = make_loss({"shift": {"target": 0}})
    assert loss({"shift": 0.5}) == pytest.approx(0.25)


def test_function_selectable_inside_the_definition() -> None:
    loss = make_loss({**UV_TARGET, "function": "absolute"})
    assert loss.function == "absolute"
    assert loss({"lambda_max": 572.0, "fwhm": 60.0, "intensity": 1.0}) == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("definition", "function", "message"),
    [
        ({"a": {"target": 1}}, "cubic", r"^campaign\.loss\.function: unknown loss function"),
        ({}, "squared", r"^campaign\.loss: needs at least one property"),
        ({"a": {"weight": 1}}, "squared", r"^campaign\.loss\.a\.target: required"),
        ({"a": {"target": "x"}}, "squared", r"^campaign\.loss\.a\.target: expected a finite"),
        ({"a": {"target": 1, "weight": -1}}, "squared", r"^campaign\.loss\.a\.weight: must not"),
        ({"a": {"target": 1, "wieght": 1}}, "squared", r"^campaign\.loss\.a\.wieght: unknown"),
        ({"a": {"target": 1, "weight": 0}}, "squared", r"^campaign\.loss: the weights"),
        ({"a": 3}, "squared", r"^campaign\.loss\.a: expected"),
    ],
)
def test_bad_definition_names_the_field(definition: dict, function: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_loss(definition, function)


def test_missing_or_bad_property_names_the_field() -> None:
    loss = make_loss(UV_TARGET)
    with pytest.raises(ValueError, match=r"^campaign\.loss\.fwhm: property not in the results"):
        loss({"lambda_max": 500.0, "intensity": 1.0})
    with pytest.raises(ValueError, match=r"^campaign\.loss\.intensity: expected a finite"):
        loss({"lambda_max": 500.0, "fwhm": 60.0, "intensity": math.nan})


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(value=finite, target=finite, function=st.sampled_from(LOSS_FUNCTIONS))
def test_loss_is_non_negative_and_zero_only_on_target(
    value: float, target: float, function: str
) -> None:
    loss = make_loss({"p": {"target": target}}, function)
    result = loss({"p": value})
    assert result >= 0.0
    assert (result == 0.0) == (value == target) or abs(value - target) < 1e-150


def test_round_trip_through_to_dict() -> None:
    loss = make_loss(UV_TARGET, "absolute")
    data = loss.to_dict()
    again = make_loss(data["terms"], data["function"])
    assert again == loss
