"""What simulated devices measure and record, by kind and action.

Dosing actions write to the sample ledger; measuring actions read it. Numbers
carry seeded noise from the device's generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from octopus_modules.sim.sample_ledger import SampleLedger
from octopus_modules.sim.spectrum import (
    WAVELENGTHS_NM,
    SilverSynthesis,
    extract_peak,
    silver_spectrum,
)


def measured_data(
    kind: str,
    ledger: SampleLedger,
    action: str,
    params: Mapping[str, Any],
    rng: np.random.Generator,
) -> dict[str, Any]:
    """What a simulated device of ``kind`` measures by ``action``; dosing writes ``ledger``."""
    samples = [str(s) for s in params.get("samples", []) or []]
    if kind == "pump" and action == "dispense":
        volume, rate = float(params["volume_ul"]), float(params["rate_ul_s"])
        dispensed = max(volume * (1.0 + rng.normal(0.0, 0.005)), 0.0)  # 0.5 % dosing error
        for sample in samples:
            ledger.add_liquid(sample, str(params.get("solution", "")), dispensed, rate)
        return {"dispensed_ul": dispensed}
    if kind == "powder_dispenser" and action == "dose":
        dosed = max(float(params["mass_mg"]) * (1.0 + rng.normal(0.0, 0.01)), 0.0)
        for sample in samples:
            ledger.add_powder(sample, str(params.get("powder", "")), dosed)
        return {"dosed_mg": dosed}
    if kind == "balance" and action == "weigh":
        target = float(params.get("target_mg", 0.0))
        return {"mass_mg": target + float(rng.normal(0.0, 0.1))}
    if kind == "spectrometer" and action == "measure":
        return _spectra(ledger, samples, int(rng.integers(2**31)))
    if kind == "spectrometer" and action == "reference":
        return {"reference_counts": float(50000 + rng.normal(0.0, 50.0))}
    if kind == "stirrer":
        return {k: float(v) for k, v in params.items() if k != "samples"}
    if kind == "potentiostat" and action == "cv":
        return _cv_summary(params, rng)
    return {}


def _spectra(ledger: SampleLedger, samples: list[str], seed: int) -> dict[str, Any]:
    """Spectrum and main peak of the (first) sample; blank if the sample is unknown.

    The noise seed comes from the device's seeded generator: a repeated measurement
    of one sample differs, a re-run of the same lab day gives the same numbers."""
    sample = samples[0] if samples else ""
    synthesis = SilverSynthesis.from_record(ledger.record(sample))
    absorbance = silver_spectrum(synthesis, seed=seed, sample=sample)
    peak = extract_peak(WAVELENGTHS_NM, absorbance)
    return {
        "sample": sample,
        "wavelength_nm": WAVELENGTHS_NM.tolist(),
        "absorbance": absorbance.tolist(),
        "peak_found": peak.found,
        "lambda_max_nm": peak.lambda_max_nm,
        "fwhm_nm": peak.fwhm_nm,
        "intensity": peak.intensity,
    }


def _cv_summary(params: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """A plausible oxygen-reduction CV summary (no physics beyond noise)."""
    return {
        "cycles": int(params.get("cycles", 1)),
        "onset_potential_v": float(0.9 + rng.normal(0.0, 0.01)),
        "half_wave_potential_v": float(0.8 + rng.normal(0.0, 0.01)),
        "limiting_current_ma_cm2": float(-5.7 + rng.normal(0.0, 0.05)),
    }
