"""``octopus lab up``: the lab's nodes as supervised processes."""

from __future__ import annotations

import argparse
import sys

from octopus_bringup.nodes import default_lab_file, node_specs
from octopus_client.supervisor import Supervisor, python_module_argv
from octopus_scheduler.service.lab_config import LabConfigError, load_lab_config


def lab_up(args: argparse.Namespace) -> int:
    try:
        config = load_lab_config(args.lab_file or default_lab_file())
        specs = node_specs(
            config, time_scale=args.time_scale, policy=args.policy, namespace=args.namespace
        )
    except LabConfigError as error:
        print(f"octopus lab up: {error}", file=sys.stderr)
        return 2
    if args.modules_only:
        specs = [s for s in specs if s.package != "octopus_scheduler"]
    supervisor = Supervisor()
    for spec in specs:
        supervisor.add(spec.name, python_module_argv(spec.module, spec.ros_arguments()))
    print(
        f"lab {config.name}: starting {', '.join(s.name for s in specs)} (Ctrl-C stops them)",
        flush=True,
    )
    return supervisor.run_until_signal()
