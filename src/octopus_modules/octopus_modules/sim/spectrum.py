"""Simulated UV-Vis spectra of silver nanoparticles, and peak extraction.

The model gives a closed-loop optimiser a real, smooth objective: the spectrum
depends on how the sample was made (the four solutions of the demo platform,
Citrate, H2O2, NaBH4 and AgNO3, and the rate at which NaBH4 went in). It is
inspired by seed-mediated Ag nanoprism chemistry, not fitted to data.

Model (all volumes in uL; ``V`` = total volume; fractions ``a, b, c, h`` =
AgNO3, NaBH4, Citrate, H2O2 volume / V; ``r`` = volume-weighted NaBH4 rate, uL/s):

* growth driver ``g = 1.2 ln((h + 0.01) / (b + 0.01)) + 0.5 ln((c + 0.01) / 0.1)
  - 0.6 ln((r + 1) / 21)``: H2O2 (etching into plates) and citrate (capping) red-
  shift, more and faster reductant gives many small spheres (blue shift);
* shape ``s = 1 / (1 + exp(-g))`` in (0, 1);
* peak position ``lambda_max = 395 + 330 s`` nm (395 nm spheres ... 725 nm prisms);
* peak width ``FWHM = 50 + 90 s + 60 (1 - exp(-r / 100))`` nm (plates and fast
  addition give polydisperse, broad bands);
* peak absorbance ``I = 2.2 (1 - exp(-a / 0.1)) * rho / (rho + 0.3) * (1 - 0.3 s)``
  with ``rho = b / (a + 1e-6)`` the reductant-to-silver ratio: more silver, more
  particles, until reduction runs out;
* spectrum ``A(l) = I exp(-4 ln2 (l - lambda_max)^2 / FWHM^2)
  + 0.04 I (350 / l)^4`` (a Rayleigh-like scattering tail) ``+ N(0, sigma^2)``,
  ``sigma = 0.004``, seeded by (seed, sample id) so repeats are reproducible.

A sample with no silver gives a flat, noisy baseline (no peak). Every quantity is
a smooth function of the inputs, so gradients and Bayesian optimisation work.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from octopus_modules.sim.sample_ledger import SampleRecord

WAVELENGTHS_NM = np.arange(300.0, 901.0, 1.0)
NOISE_SIGMA = 0.004
_PEAK_THRESHOLD = 0.02  # below this the "peak" is noise


@dataclass(frozen=True)
class SilverSynthesis:
    """The synthesis parameters the model depends on (volumes in uL, rate in uL/s)."""

    agno3_ul: float = 0.0
    nabh4_ul: float = 0.0
    citrate_ul: float = 0.0
    h2o2_ul: float = 0.0
    nabh4_rate_ul_s: float = 20.0

    @classmethod
    def from_record(cls, record: SampleRecord) -> SilverSynthesis:
        def volume(name: str) -> float:
            liquid = record.liquids.get(name)
            return liquid.volume_ul if liquid else 0.0

        nabh4 = record.liquids.get("NaBH4")
        return cls(
            agno3_ul=volume("AgNO3"),
            nabh4_ul=volume("NaBH4"),
            citrate_ul=volume("Citrate"),
            h2o2_ul=volume("H2O2"),
            nabh4_rate_ul_s=nabh4.mean_rate_ul_s if nabh4 else 20.0,
        )


@dataclass(frozen=True)
class PeakModel:
    """The noise-free band the model predicts."""

    lambda_max_nm: float
    fwhm_nm: float
    intensity: float


@dataclass(frozen=True)
class Peak:
    """What peak extraction finds in a measured spectrum."""

    found: bool
    lambda_max_nm: float
    fwhm_nm: float
    intensity: float


def silver_peak_model(p: SilverSynthesis) -> PeakModel:
    total = p.agno3_ul + p.nabh4_ul + p.citrate_ul + p.h2o2_ul
    if total <= 0:
        return PeakModel(0.0, 0.0, 0.0)
    a, b = p.agno3_ul / total, p.nabh4_ul / total
    c, h = p.citrate_ul / total, p.h2o2_ul / total
    r = max(p.nabh4_rate_ul_s, 0.0)
    g = (
        1.2 * math.log((h + 0.01) / (b + 0.01))
        + 0.5 * math.log((c + 0.01) / 0.1)
        - 0.6 * math.log((r + 1.0) / 21.0)
    )
    s = 1.0 / (1.0 + math.exp(-g))
    rho = b / (a + 1e-6)
    intensity = 2.2 * (1.0 - math.exp(-a / 0.1)) * rho / (rho + 0.3) * (1.0 - 0.3 * s)
    fwhm = 50.0 + 90.0 * s + 60.0 * (1.0 - math.exp(-r / 100.0))
    return PeakModel(395.0 + 330.0 * s, fwhm, intensity)


def silver_spectrum(p: SilverSynthesis, seed: int = 0, sample: str = "") -> np.ndarray:
    """Absorbance on :data:`WAVELENGTHS_NM` for synthesis ``p`` with seeded noise."""
    band = silver_peak_model(p)
    lam = WAVELENGTHS_NM
    absorbance = np.zeros_like(lam)
    if band.intensity > 0:
        absorbance += band.intensity * np.exp(
            -4.0 * math.log(2.0) * (lam - band.lambda_max_nm) ** 2 / band.fwhm_nm**2
        )
        absorbance += 0.04 * band.intensity * (350.0 / lam) ** 4
    rng = np.random.default_rng([seed, zlib.crc32(sample.encode())])
    return absorbance + rng.normal(0.0, NOISE_SIGMA, lam.shape)


def extract_peak(wavelengths_nm: np.ndarray, absorbance: np.ndarray, min_nm: float = 350.0) -> Peak:
    """Main band of a spectrum: position (parabolic refinement), FWHM, height.

    The spectrum is smoothed with a 9-point moving average first, so noise does
    not move the maximum or the half-height crossings.
    """
    lam = np.asarray(wavelengths_nm, dtype=float)
    smooth = np.convolve(np.asarray(absorbance, dtype=float), np.ones(9) / 9.0, mode="same")
    region = np.flatnonzero(lam >= min_nm)
    region = region[4:-4] if len(region) > 8 else region  # edges are biased by the padding
    i = int(region[np.argmax(smooth[region])])
    height = float(smooth[i])
    if height < _PEAK_THRESHOLD:
        return Peak(False, 0.0, 0.0, max(height, 0.0))
    centre = float(lam[i])
    if 0 < i < len(lam) - 1:  # parabola through the maximum and its neighbours
        y0, y1, y2 = smooth[i - 1], smooth[i], smooth[i + 1]
        denominator = y0 - 2 * y1 + y2
        if denominator < 0:
            centre += 0.5 * (y0 - y2) / denominator * float(lam[i + 1] - lam[i])
    half = height / 2.0
    left = _crossing(lam, smooth, i, -1, half)
    right = _crossing(lam, smooth, i, +1, half)
    return Peak(True, float(centre), right - left, height)


def _crossing(lam: np.ndarray, y: np.ndarray, start: int, step: int, level: float) -> float:
    """Wavelength where ``y`` falls below ``level`` walking from ``start``; the edge if never."""
    j = start
    while 0 <= j + step < len(y):
        if y[j + step] < level:
            y0, y1 = y[j], y[j + step]
            frac = (y0 - level) / (y0 - y1)
            return float(lam[j] + frac * (lam[j + step] - lam[j]))
        j += step
    return float(lam[j])
