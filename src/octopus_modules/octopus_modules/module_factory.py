"""One call from "which module" to a ready runtime: what the module node needs at start-up."""

from __future__ import annotations

from pathlib import Path

from octopus_modules.description import (
    DescriptionError,
    ModuleDescription,
    builtin_description_names,
    load_builtin_description,
    load_description,
)
from octopus_modules.drivers.registry import DriverContext, create_backends
from octopus_modules.runtime import ModuleRuntime
from octopus_modules.sim.sample_ledger import SampleLedger


def resolve_description(reference: str) -> ModuleDescription:
    """A description from a file path, or a built-in one by name (``batch_synthesis``)."""
    path = Path(reference)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise DescriptionError(f"{reference}: no such description file")
        return load_description(path)
    if reference in builtin_description_names():
        return load_builtin_description(reference)
    raise DescriptionError(
        f"{reference}: neither a description file nor a built-in description "
        f"({', '.join(builtin_description_names())})"
    )


def build_module_runtime(
    description: ModuleDescription | str,
    *,
    time_scale: float = 1.0,
    seed: int = 0,
    ledger_path: str | Path | None = None,
    action_timeout_factor: float = 3.0,
    action_timeout_margin_s: float = 10.0,
) -> ModuleRuntime:
    """Load the description, build every device's back end and the runtime over them.

    ``ledger_path`` lets the simulated modules of one lab, each in its own process,
    share what is in each sample (pump of one module, spectrometer of another).
    """
    if isinstance(description, str):
        description = resolve_description(description)
    context = DriverContext(time_scale=time_scale, seed=seed, ledger=SampleLedger(ledger_path))
    backends = create_backends(description, context)
    return ModuleRuntime(
        description,
        backends,
        time_scale=time_scale,
        action_timeout_factor=action_timeout_factor,
        action_timeout_margin_s=action_timeout_margin_s,
    )
