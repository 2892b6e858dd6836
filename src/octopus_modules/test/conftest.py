"""Shared fixtures: a small test module whose durations the tests control."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from octopus_modules.description import ModuleDescription, parse_description_text
from octopus_modules.drivers.registry import DriverContext, create_backends
from octopus_modules.lab_clock import ScaledClock
from octopus_modules.runtime.module_runtime import ModuleRuntime

#: simulated seconds per wall second in runtime tests: 100 s of description time = 0.1 s
TIME_SCALE = 1000.0

TEST_MODULE = """
module: TestBench
devices:
  - {name: Arm, kind: robot_arm}
  - {name: Pump, kind: pump}
  - {name: Spec, kind: spectrometer}
slots:
  - {type: rack, capacity: 4}
consumables:
  - {name: tip, stock: 3, low_stock: 1}
tasks:
  - name: Dose
    scope: per_sample
    parameters:
      - {name: Volume, type: float, unit: uL, min: 1, max: 1000}
      - {name: Rate, type: float, unit: uL/s, min: 1, max: 100, default: 10}
    mask: [Pump]
    slots: [{type: rack, use: occupy}]
    consumes: [{name: tip, amount: 1}]
    steps:
      - mode: active
        actions:
          - device: Pump
            action: dispense
            params: {volume_ul: "{Volume}", rate_ul_s: "{Rate}", solution: AgNO3,
                     samples: ["{sample}"]}
            duration_s: "Volume / Rate"
  - name: Move
    parameters: [{name: Seconds, type: float, min: 0, max: 10000}]
    mask: [Arm]
    steps:
      - mode: active
        actions:
          - {device: Arm, action: move, params: {source: a, target: b}, duration_s: Seconds}
  - name: MoveAndDose
    parameters: [{name: Seconds, type: float, min: 0, max: 10000}]
    mask: [Arm, Pump]
    steps:
      - mode: active
        actions:
          - {device: Arm, action: home, duration_s: Seconds}
  - name: Wait
    parameters: [{name: Minutes, type: float, min: 0, max: 600}]
    mask: [Arm]
    slots: [{type: rack, use: release}]
    steps:
      - {name: load, mode: active, actions: [{device: Arm, action: home, duration_s: 1}]}
      - {name: react, mode: standby, duration_s: "Minutes * 60"}
      - {name: unload, mode: active, actions: [{device: Arm, action: home, duration_s: 1}]}
  - name: Measure
    mask: [Spec]
    steps:
      - mode: active
        actions: [{device: Spec, action: measure, params: {samples: "{samples}"}, duration_s: 5}]
"""


@pytest.fixture
def description() -> ModuleDescription:
    return parse_description_text(TEST_MODULE)


def build_runtime(
    description: ModuleDescription, time_scale: float = TIME_SCALE, **kwargs: float
) -> ModuleRuntime:
    clock = ScaledClock(time_scale)  # one clock for the runtime and its devices, as in a node
    context = DriverContext(clock=clock, seed=7)
    return ModuleRuntime(description, create_backends(description, context), clock=clock, **kwargs)


@pytest.fixture
def closing() -> Iterator[Callable[[ModuleRuntime], ModuleRuntime]]:
    """``closing(runtime)``: the runtime, closed when the test ends (its threads end)."""
    made: list[ModuleRuntime] = []

    def close_later(runtime: ModuleRuntime) -> ModuleRuntime:
        made.append(runtime)
        return runtime

    yield close_later
    for runtime in made:
        runtime.close()


@pytest.fixture
def make_runtime(closing: Callable[[ModuleRuntime], ModuleRuntime]) -> Callable[..., ModuleRuntime]:
    """``make_runtime(description, time_scale=..., action_timeout_margin_s=...)``."""
    return lambda *args, **kwargs: closing(build_runtime(*args, **kwargs))


@pytest.fixture
def runtime(
    make_runtime: Callable[..., ModuleRuntime], description: ModuleDescription
) -> ModuleRuntime:
    return make_runtime(description)
