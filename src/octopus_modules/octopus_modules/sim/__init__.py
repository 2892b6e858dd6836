"""Simulated chemistry: what is in each sample, and the spectra it gives."""
