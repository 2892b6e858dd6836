"""Every message, service and action type imports and survives CDR serialisation with non-default
values in every field (nested types, arrays and constants included)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from rclpy.serialization import deserialize_message, serialize_message

PACKAGE = Path(__file__).resolve().parents[1]


def interface_names(folder: str, suffix: str) -> list[str]:
    return sorted(p.stem for p in (PACKAGE / folder).glob(f"*{suffix}"))


def message_classes() -> list[type]:
    classes: list[type] = []
    msg = importlib.import_module("octopus_interfaces.msg")
    srv = importlib.import_module("octopus_interfaces.srv")
    action = importlib.import_module("octopus_interfaces.action")
    classes += [getattr(msg, name) for name in interface_names("msg", ".msg")]
    for name in interface_names("srv", ".srv"):
        service = getattr(srv, name)
        classes += [service.Request, service.Response]
    for name in interface_names("action", ".action"):
        act = getattr(action, name)
        classes += [act.Goal, act.Result, act.Feedback]
    return classes


def non_default(type_name: str, depth: int, seed: int) -> object:
    """A value of the rosidl type ``type_name`` that differs from its default."""
    if type_name.startswith("sequence<"):
        inner = type_name[len("sequence<") : -1].split(",")[0]
        return [non_default(inner, depth, seed + i) for i in range(2)]
    if type_name == "string":
        return f"value-{seed}"
    if type_name == "boolean":
        return True
    if type_name in {"float", "double"}:
        return 1.5 + seed
    if type_name in {"int32", "int64", "uint8", "uint32", "uint64", "int8", "int16", "uint16"}:
        return 3 + seed
    package, _, name = type_name.partition("/")
    module = importlib.import_module(f"{package}.msg")
    return filled(getattr(module, name), depth + 1, seed)


def filled(cls: type, depth: int = 0, seed: int = 1) -> object:
    message = cls()
    for index, (field, type_name) in enumerate(cls.get_fields_and_field_types().items()):
        setattr(message, field, non_default(type_name, depth, seed + index))
    return message


CLASSES = message_classes()


def test_every_interface_file_is_generated() -> None:
    # 18 messages, 8 services (2 halves), 2 actions (3 parts)
    assert len(CLASSES) == 18 + 8 * 2 + 2 * 3


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_round_trip_with_non_default_values(cls: type) -> None:
    original = filled(cls)
    if cls.get_fields_and_field_types():  # an empty request has nothing to set
        assert original != cls(), "every field was set to a non-default value"
    restored = deserialize_message(serialize_message(original), cls)
    assert restored == original


def test_state_constants_are_distinct() -> None:
    from octopus_interfaces.msg import Job, TaskStep

    for cls, prefix in ((Job, "STATE_"), (TaskStep, "STATE_"), (TaskStep, "MODE_")):
        values = [getattr(cls, n) for n in dir(cls) if n.startswith(prefix)]
        assert len(values) == len(set(values)) >= 2
