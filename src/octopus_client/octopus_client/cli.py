"""``octopus``: the lab engineer's command line.

Each command imports what it needs when it runs, so ``octopus --help`` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EPILOG = """\
examples:
  octopus lab up                       bring the demo lab up (Ctrl-C stops every node)
  octopus lab up my_lab.yaml --time-scale 60
  octopus simulate fig8-platform-day --policy planner
  octopus bench                        published scenarios under every policy
  octopus demo                         the simulated lab day, end to end
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="octopus",
        description="Run and use an OCTOPUS self-driving lab over ROS 2.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    lab = commands.add_parser("lab", help="bring a lab up from its lab description")
    lab_commands = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    up = lab_commands.add_parser(
        "up",
        help="start the scheduler and every module node, supervised; Ctrl-C stops them",
        description="Start the lab's nodes as processes (what `ros2 launch octopus_bringup "
        "lab.launch.py` does where ROS 2 is installed), restart crashed ones, stop all on Ctrl-C.",
    )
    up.add_argument("lab_file", nargs="?", help="lab description YAML (default: the demo lab)")
    up.add_argument("--time-scale", type=float, help="override the lab's time scale")
    up.add_argument("--policy", help="override the scheduling policy")
    up.add_argument("--namespace", help="override the lab's ROS namespace")
    up.add_argument(
        "--modules-only", action="store_true", help="start only the module nodes (no scheduler)"
    )

    simulate = commands.add_parser(
        "simulate",
        help="run a scenario in the digital twin (virtual time)",
        description="Simulate a scenario file (or a built-in scenario name) under a policy.",
    )
    simulate.add_argument("scenario", help="scenario YAML file or built-in name")
    simulate.add_argument("--policy", default="planner", help="scheduling policy")
    simulate.add_argument("--json", action="store_true", help="print the full report as JSON")

    commands.add_parser(
        "bench",
        help="published scenarios under every policy, beside the published numbers",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "lab":
        from octopus_client.commands.lab import lab_up

        return lab_up(args)
    if args.command == "simulate":
        from octopus_scheduler.simulate_cli import main as simulate_main

        forwarded = [args.scenario, "--policy", args.policy] + (["--json"] if args.json else [])
        return int(simulate_main(forwarded) or 0)
    if args.command == "bench":
        from octopus_scheduler.bench import main as bench_main

        return int(bench_main([]) or 0)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
