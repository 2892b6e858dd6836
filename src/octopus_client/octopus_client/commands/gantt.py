"""``octopus gantt``: the lab's schedule as a picture (a file, or a live window).

- ``--out FILE.png|.svg``: the current schedule (latched ``<ns>/schedule``), or with
  ``--scenario`` a simulated one (the digital twin, virtual time, no lab needed).
- ``--live``: a window following the schedule topic (the same widget as the rqt plugin).

matplotlib and Qt are imported only here, so the rest of the CLI works without them.
"""

from __future__ import annotations

import argparse
from typing import Any

from octopus_client.commands.errors import EXIT_INVALID, EXIT_UNAVAILABLE, ClientError


def _missing(feature: str, error: ImportError) -> ClientError:
    return ClientError(
        f"{feature} needs {error.name or 'a missing package'} "
        "(pip install matplotlib PyQt5, or tools/setup.sh)",
        EXIT_UNAVAILABLE,
    )


def _simulated(args: argparse.Namespace) -> Any:
    from octopus_scheduler.core.errors import SpecError
    from octopus_scheduler.core.policies import available_policies
    from octopus_scheduler.twin.scenario import load_scenario
    from octopus_scheduler.twin.simulator import simulate

    if args.policy not in available_policies():
        raise ClientError(
            f"--policy: unknown policy {args.policy!r} ({', '.join(available_policies())})",
            EXIT_INVALID,
        )
    try:
        scenario = load_scenario(args.scenario)
    except SpecError as error:
        raise ClientError(f"--scenario: {error}", EXIT_INVALID) from None
    return scenario, simulate(scenario, args.policy)


def gantt(args: argparse.Namespace) -> int:
    from octopus_client.client import normalize_namespace

    if not args.out and not args.live:
        raise ClientError("say where: --out FILE.png|.svg, or --live for a window", EXIT_INVALID)
    if args.out and not args.out.lower().endswith((".png", ".svg", ".pdf")):
        raise ClientError(f"--out: {args.out}: use a .png, .svg or .pdf file name", EXIT_INVALID)
    topic = f"{normalize_namespace(args.namespace)}/schedule"
    if args.live:
        if args.scenario:
            raise ClientError("--live follows the running lab; drop --scenario", EXIT_INVALID)
        try:
            from octopus_client.gantt.live import run_live
        except ImportError as error:
            raise _missing("gantt --live", error) from None
        return run_live(topic=topic)
    try:
        import matplotlib  # noqa: F401 - fail early and clearly, before a simulation runs
    except ImportError as error:
        raise _missing("gantt --out", error) from None
    from octopus_client.gantt.files import (
        ScheduleUnavailable,
        export_current_schedule,
        export_simulation,
    )

    if args.scenario:
        scenario, report = _simulated(args)
        path = export_simulation(report, args.out, lab=scenario.lab)
    else:
        try:
            path = export_current_schedule(args.out, topic=topic, timeout_s=args.timeout)
        except ScheduleUnavailable as error:
            raise ClientError(f"{error} (octopus lab up)", EXIT_UNAVAILABLE) from None
    print(f"Gantt written to {path}")
    return 0
