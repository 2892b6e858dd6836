from __future__ import annotations

import pytest

from octopus_modules.description import DescriptionError, load_builtin_description
from octopus_modules.driver_overrides import apply_driver_overrides


def test_override_switches_one_device_to_a_serial_driver() -> None:
    description = load_builtin_description("batch_synthesis")
    changed = apply_driver_overrides(
        description,
        {"Batch_Stirrer": {"driver": "namur_stirrer", "settings": {"port": "/dev/ttyUSB0"}}},
    )
    stirrer = changed.device("Batch_Stirrer")
    assert (stirrer.driver, dict(stirrer.settings)) == ("namur_stirrer", {"port": "/dev/ttyUSB0"})
    assert changed.device("Batch_Pump") == description.device("Batch_Pump")
    assert changed.tasks == description.tasks


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Batch_Stirer": {"driver": "simulated"}}, "driver_overrides.Batch_Stirer: Batch"),
        ({"Batch_Pump": {"drv": "x"}}, "driver_overrides.Batch_Pump: expected a mapping"),
        ({"Batch_Pump": {"settings": [1]}}, "driver_overrides.Batch_Pump.settings"),
    ],
)
def test_bad_overrides_name_the_device(overrides: dict, message: str) -> None:
    with pytest.raises(DescriptionError, match=message):
        apply_driver_overrides(load_builtin_description("batch_synthesis"), overrides)
