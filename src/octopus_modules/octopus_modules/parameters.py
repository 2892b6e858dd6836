"""Typed task parameters: declaration (from a description) and checking of goal values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PARAMETER_TYPES = ("float", "int", "bool", "str", "list[str]", "list[float]")


class ParameterError(ValueError):
    """A goal parameter is missing, of the wrong type or out of range; names the field."""


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    type: str = "float"
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()
    default: Any = None  # None: the parameter is required
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is None

    def check(self, value: Any, field: str) -> Any:
        """Return ``value`` converted to the declared type, or raise ParameterError."""
        converted = _convert(self.type, value, field)
        items = converted if isinstance(converted, list) else [converted]
        for i, item in enumerate(items):
            where = f"{field}[{i}]" if isinstance(converted, list) else field
            if self.choices and item not in self.choices:
                choices = ", ".join(str(c) for c in self.choices)
                raise ParameterError(f"{where}: {item!r} is not one of {choices}")
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                unit = f" {self.unit}" if self.unit else ""
                if self.minimum is not None and item < self.minimum:
                    raise ParameterError(
                        f"{where}: {item:g}{unit} is below minimum {self.minimum:g}"
                    )
                if self.maximum is not None and item > self.maximum:
                    raise ParameterError(
                        f"{where}: {item:g}{unit} is above maximum {self.maximum:g}"
                    )
        return converted


def _convert(type_name: str, value: Any, field: str) -> Any:
    if type_name.startswith("list["):
        if not isinstance(value, (list, tuple)):
            raise ParameterError(f"{field}: expected a list, got {type(value).__name__}")
        inner = type_name[5:-1]
        return [_convert(inner, v, f"{field}[{i}]") for i, v in enumerate(value)]
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        raise ParameterError(f"{field}: expected true/false, got {value!r}")
    if type_name == "str":
        if isinstance(value, str):
            return value
        raise ParameterError(f"{field}: expected text, got {type(value).__name__}")
    if isinstance(value, bool):
        raise ParameterError(f"{field}: expected a number, got a boolean")
    if isinstance(value, str):  # goals from the command line often carry numbers as text
        try:
            value = float(value) if type_name == "float" else int(value)
        except ValueError:
            raise ParameterError(f"{field}: expected a {type_name}, got {value!r}") from None
    if type_name == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise ParameterError(f"{field}: expected an integer, got {value!r}")
        return value
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParameterError(f"{field}: expected a finite number, got {value!r}")
    return float(value)
