"""Loss functions of a Bayesian-optimisation campaign: how far a sample is from the target.

A job script's ``campaign.loss`` names measured or derived properties with a target and a weight,
e.g. the main band of a UV-Vis spectrum, under the names the UV-Vis module reports::

    loss:
      lambda_max_nm: {target: 520, weight: 2}   # peak position, nm
      fwhm_nm:       {target: 60,  weight: 1}   # peak width, nm
      intensity:     {target: 1.0, weight: 1}   # peak absorbance

(When no band is found the module reports 0 for all three, which the loss ranks as far off.)

Each property ``p_i`` is compared with its target ``t_i`` on a relative scale
``s_i = |t_i|`` (``1`` when the target is 0), so nanometres and absorbance units weigh alike:
a 10 % miss costs the same in every term. With weights ``w_i`` and ``W = sum(w_i)``:

* ``squared`` (default): ``L = sum(w_i * ((p_i - t_i) / s_i)^2) / W``; smooth, what a Gaussian
  process models best;
* ``absolute``: ``L = sum(w_i * |p_i - t_i| / s_i) / W``; more forgiving of one far-off term.

``L = 0`` exactly on target. The optimiser minimises ``L``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: a term's scaled error -> its cost
_SHAPES: dict[str, Callable[[float], float]] = {
    "squared": lambda e: e * e,
    "absolute": abs,
}
LOSS_FUNCTIONS = tuple(_SHAPES)


@dataclass(frozen=True)
class LossTerm:
    prop: str
    target: float
    weight: float = 1.0

    @property
    def scale(self) -> float:
        return abs(self.target) if self.target != 0 else 1.0


@dataclass(frozen=True)
class Loss:
    """A weighted distance of properties from their targets (formula in the module docstring)."""

    terms: tuple[LossTerm, ...]
    function: str = "squared"
    field: str = "campaign.loss"  # where the definition came from, for error messages

    def __post_init__(self) -> None:
        if self.function not in _SHAPES:
            raise ValueError(
                f"{self.field}.function: unknown loss function {self.function!r} "
                f"(known: {', '.join(LOSS_FUNCTIONS)})"
            )
        if not self.terms:
            raise ValueError(f"{self.field}: needs at least one property")
        if sum(t.weight for t in self.terms) <= 0:
            raise ValueError(f"{self.field}: the weights must not all be zero")

    @property
    def properties(self) -> tuple[str, ...]:
        return tuple(t.prop for t in self.terms)

    def __call__(self, properties: Mapping[str, Any]) -> float:
        shape = _SHAPES[self.function]
        total = 0.0
        for term in self.terms:
            value = _property(properties, term.prop, self.field)
            total += term.weight * shape((value - term.target) / term.scale)
        return total / sum(t.weight for t in self.terms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "terms": {t.prop: {"target": t.target, "weight": t.weight} for t in self.terms},
        }


def _property(properties: Mapping[str, Any], name: str, field: str) -> float:
    if name not in properties:
        known = ", ".join(sorted(properties)) or "none"
        raise ValueError(f"{field}.{name}: property not in the results (measured: {known})")
    value = properties[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{field}.{name}: expected a finite number in the results, got {value!r}")
    return float(value)


def make_loss(
    definition: Mapping[str, Any], function: str = "squared", field: str = "campaign.loss"
) -> Loss:
    """Build a loss from a job script's ``campaign.loss`` mapping ``{prop: {target, weight}}``.

    The mapping may also carry ``function: squared | absolute`` to choose the formula.
    """
    if not isinstance(definition, Mapping):
        raise ValueError(f"{field}: expected a mapping of property -> {{target, weight}}")
    terms: list[LossTerm] = []
    for prop, raw in definition.items():
        if prop == "function":
            function = str(raw)
            continue
        path = f"{field}.{prop}"
        if not isinstance(raw, Mapping):
            raise ValueError(f"{path}: expected {{target, weight}}")
        unknown = set(raw) - {"target", "weight"}
        if unknown:
            raise ValueError(
                f"{path}.{sorted(unknown)[0]}: unknown field (allowed: target, weight)"
            )
        if "target" not in raw:
            raise ValueError(f"{path}.target: required")
        target = _number(raw["target"], f"{path}.target")
        weight = _number(raw.get("weight", 1.0), f"{path}.weight")
        if weight < 0:
            raise ValueError(f"{path}.weight: must not be negative")
        terms.append(LossTerm(str(prop), target, weight))
    return Loss(tuple(terms), function, field)


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{path}: expected a finite number, got {value!r}")
    return float(value)
