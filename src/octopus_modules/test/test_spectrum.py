from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from octopus_modules.drivers.simulated import SimulatedBackend
from octopus_modules.sim.sample_ledger import SampleLedger
from octopus_modules.sim.spectrum import (
    WAVELENGTHS_NM,
    SilverSynthesis,
    extract_peak,
    silver_peak_model,
    silver_spectrum,
)

RECIPE = SilverSynthesis(
    agno3_ul=300, nabh4_ul=100, citrate_ul=200, h2o2_ul=100, nabh4_rate_ul_s=20
)


def test_peak_extraction_recovers_the_model_band() -> None:
    for h2o2 in (0.0, 50.0, 150.0, 400.0):
        recipe = SilverSynthesis(300, 100, 200, h2o2, 20)
        band = silver_peak_model(recipe)
        peak = extract_peak(WAVELENGTHS_NM, silver_spectrum(recipe, seed=4, sample="x"))
        assert peak.found
        assert peak.lambda_max_nm == pytest.approx(band.lambda_max_nm, abs=3.0)
        assert peak.fwhm_nm == pytest.approx(band.fwhm_nm, rel=0.05)
        assert peak.intensity == pytest.approx(band.intensity, rel=0.05, abs=0.01)


def test_spectrum_is_reproducible_per_seed_and_sample() -> None:
    a = silver_spectrum(RECIPE, seed=1, sample="s1")
    assert np.array_equal(a, silver_spectrum(RECIPE, seed=1, sample="s1"))
    assert not np.array_equal(a, silver_spectrum(RECIPE, seed=1, sample="s2"))
    noise = a - silver_spectrum(RECIPE, seed=1, sample="s2")
    assert float(np.std(noise)) == pytest.approx(0.004 * np.sqrt(2), rel=0.15)


def test_model_responds_smoothly_and_in_the_documented_direction() -> None:
    h2o2 = np.linspace(0, 600, 121)
    positions = np.array(
        [silver_peak_model(SilverSynthesis(300, 100, 200, h, 20)).lambda_max_nm for h in h2o2]
    )
    steps = np.diff(positions)
    assert np.all(steps > 0)  # more H2O2: red shift
    assert np.max(np.abs(np.diff(steps))) < 0.5 * np.max(steps)  # no jumps: smooth
    assert positions[0] < 450 and positions[-1] > 600  # spans spheres ... plates
    fast = silver_peak_model(SilverSynthesis(300, 100, 200, 100, 150))
    slow = silver_peak_model(SilverSynthesis(300, 100, 200, 100, 5))
    assert fast.lambda_max_nm < slow.lambda_max_nm  # fast reduction: small particles
    more_silver = silver_peak_model(SilverSynthesis(600, 200, 200, 100, 20))
    assert more_silver.intensity > silver_peak_model(RECIPE).intensity


def test_blank_sample_has_no_peak() -> None:
    peak = extract_peak(WAVELENGTHS_NM, silver_spectrum(SilverSynthesis(), seed=0))
    assert not peak.found and peak.intensity < 0.02


def test_spectrometer_measures_what_the_pump_dosed(tmp_path: Path) -> None:
    # two modules in two processes share the ledger through a file
    pump = SimulatedBackend("Pump", "pump", time_scale=1e6, ledger=SampleLedger(tmp_path / "l"))
    spectrometer = SimulatedBackend(
        "Spec", "spectrometer", time_scale=1e6, ledger=SampleLedger(tmp_path / "l")
    )
    cancel = threading.Event()
    for solution, volume in (("AgNO3", 300), ("NaBH4", 100), ("Citrate", 200), ("H2O2", 100)):
        pump.execute(
            "dispense",
            {"volume_ul": volume, "rate_ul_s": 20, "solution": solution, "samples": ["vial1"]},
            cancel,
        )
    data = spectrometer.execute("measure", {"samples": ["vial1"]}, cancel)
    expected = silver_peak_model(RECIPE)
    assert data["peak_found"]
    assert data["lambda_max_nm"] == pytest.approx(expected.lambda_max_nm, abs=4.0)
    assert len(data["wavelength_nm"]) == len(data["absorbance"]) == len(WAVELENGTHS_NM)
    blank = spectrometer.execute("measure", {"samples": ["unknown"]}, cancel)
    assert not blank["peak_found"]


def test_repeated_measurements_differ_but_lab_reruns_repeat() -> None:
    def measure_twice(seed: int) -> list[list[float]]:
        ledger = SampleLedger()
        ledger.add_liquid("v", "AgNO3", 300, 20)
        ledger.add_liquid("v", "NaBH4", 100, 20)
        spectrometer = SimulatedBackend(
            "S", "spectrometer", time_scale=1e6, seed=seed, ledger=ledger
        )
        return [
            spectrometer.execute("measure", {"samples": ["v"]}, threading.Event())["absorbance"]
            for _ in range(2)
        ]

    first, second = measure_twice(3)
    assert first != second and np.allclose(first, second, atol=0.03)
    assert measure_twice(3) == [first, second]
