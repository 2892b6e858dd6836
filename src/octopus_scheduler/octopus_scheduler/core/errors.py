"""Errors for bad input: each names the field path that is wrong."""

from __future__ import annotations


class SpecError(ValueError):
    """A description (lab, job script, scenario) is invalid at ``field``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class LabError(SpecError):
    """The lab description is invalid."""


class JobScriptError(SpecError):
    """The job script is invalid."""


class ScenarioError(SpecError):
    """The scenario file is invalid."""
