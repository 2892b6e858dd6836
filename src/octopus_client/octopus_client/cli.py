"""``octopus``: the lab engineer's command line.

Each command imports what it needs when it runs (rclpy, the messages, matplotlib), so
``octopus --help`` starts fast and works without a lab.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Sequence

from octopus_client.commands.errors import EXIT_FAILED, EXIT_INTERRUPTED, ClientError

EPILOG = """\
examples:
  octopus lab up                       bring the demo lab up (Ctrl-C stops every node)
  octopus submit my_job.yaml --wait    submit a job script and follow it to its end
  octopus status                       who runs what, how far, when it will finish
  octopus watch                        the running steps and jobs, live (Ctrl-C leaves)
  octopus hold J0003                   no new step of J0003 starts; `octopus resume J0003`
  octopus estop --reason "spill"       every module stops; an admin resets: `estop --reset`
  octopus clear-error UV-Vis UV_Spectrometer   a device in error is fine again
  octopus results J0003 --csv --out j3.csv
  octopus gantt --out plan.png         the current schedule as a picture
  octopus simulate fig8-platform-day --policy planner
  octopus bench                        published scenarios under every policy
  octopus bench-live                   the live lab: per-action overhead, live day = twin day, scale
  octopus demo                         the published lab day, live on the simulated lab

who and where:
  Requests carry your user name (--user, else $OCTOPUS_USER, else your login): only a job's
  owner or a lab admin may hold, resume or cancel it, and only an admin resets the e-stop.
  On a lab with `auth: required` every request is signed with your key ($OCTOPUS_KEY, or
  your entry in the lab's secrets file $OCTOPUS_SECRETS); `octopus sign` prints the auth
  string for a ros2 command line.
  --namespace (else $OCTOPUS_NAMESPACE, else /octopus) selects the lab; ROS_DOMAIN_ID as usual.

exit codes:
  0 done; 1 job failed or request refused; 2 invalid input (rejected script, unknown job,
  bad arguments); 3 nothing answered (is the lab up?); 130 interrupted.
  Errors are one line on stderr; OCTOPUS_DEBUG=1 shows the traceback of an unexpected one.
"""


def _common() -> argparse.ArgumentParser:
    """Options every lab command takes, before or after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("lab connection")
    # SUPPRESS: an option given before the command is not overwritten by the sub-parser's default
    group.add_argument("--namespace", default=argparse.SUPPRESS, help="lab namespace (/octopus)")
    group.add_argument("--user", default=argparse.SUPPRESS, help="who asks (default: you)")
    group.add_argument(
        "--timeout",
        type=float,
        default=argparse.SUPPRESS,
        help="seconds to wait for the scheduler's answer (5)",
    )
    return common


def _command(
    commands: argparse._SubParsersAction,
    name: str,
    summary: str,
    description: str,
    examples: str,
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, width=88),
        epilog=f"examples:\n{examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common()],
    )


def _add_lab_commands(commands: argparse._SubParsersAction) -> None:
    submit = _command(
        commands,
        "submit",
        "submit a job script; prints the job id (--wait: follow it to its end)",
        "Send a job script (YAML) to the scheduler. It is checked at once: a rejected script "
        "prints the reason, naming the field (e.g. campaign.experiments[0].React.Time), and "
        "exits 2. With --wait, a progress bar follows the job; exit 0 if it succeeded, 1 if not.",
        "  octopus submit nanoparticles.yaml\n"
        "  octopus submit nanoparticles.yaml --wait\n"
        "  cat job.yaml | octopus submit - --user alice",
    )
    submit.add_argument("file", metavar="FILE", help="job script (YAML or JSON); - reads stdin")
    submit.add_argument("--wait", action="store_true", help="follow the job to its end")

    status = _command(
        commands,
        "status",
        "the jobs: owner, state, progress, estimated finish",
        "A table of jobs, newest first: unfinished ones and the latest ended ones. PROGRESS is "
        "the share of steps done; FINISH is the planner's estimate (~) or when the job ended, "
        "in lab time (a simulated lab's clock runs at its time scale).",
        "  octopus status\n  octopus status --mine\n  octopus status --all",
    )
    status.add_argument("--mine", action="store_true", help="only your jobs")
    status.add_argument("--all", action="store_true", help="every job on record")

    watch = _command(
        commands,
        "watch",
        "live view: running steps per module, next steps, jobs",
        "Follow the lab from its schedule and job topics; the view is redrawn on every change. "
        "Ctrl-C leaves.",
        "  octopus watch\n  octopus watch --once > snapshot.txt",
    )
    watch.add_argument("--once", action="store_true", help="print one frame and exit")
    watch.add_argument("--interval", type=float, default=1.0, help="redraw at least every N s (1)")

    for kind, what in (
        ("hold", "no new step of it starts (running steps finish)"),
        ("resume", "a held job goes on"),
        ("cancel", "it ends now, its running steps are stopped"),
    ):
        parser = _command(
            commands,
            kind,
            f"{kind} a job: {what}",
            f"{kind.capitalize()} a job: {what}. Only its owner or a lab admin may.",
            f"  octopus {kind} J0003\n  octopus {kind} J0003 --reason 'reagent ran out'",
        )
        parser.add_argument("job_id", metavar="ID", help="job id, e.g. J0003")
        parser.add_argument("--reason", help="kept in the job's history")

    estop = _command(
        commands,
        "estop",
        "engage the emergency stop (--reset: release it, admins only)",
        "Engage the lab's emergency stop: every module aborts its goals, makes its devices safe "
        "and refuses new goals until an admin resets it.",
        "  octopus estop --reason 'spill at the stirrer'\n  octopus estop --reset --user boss",
    )
    estop.add_argument("--reset", action="store_true", help="release the stop (admins only)")
    estop.add_argument("--reason", help="why (shown to everyone)")

    clear = _command(
        commands,
        "clear-error",
        "a device in error is fine again: its module and the scheduler use it again",
        "A device whose action failed (or whose back end got stuck) is out of order: the "
        "module refuses goals on it and the scheduler holds the steps that need it (they wait, "
        "they do not fail). After checking the device, clear its error.",
        "  octopus clear-error UV-Vis UV_Spectrometer\n"
        "  octopus clear-error uv_vis UV_Spectrometer",
    )
    clear.add_argument("module", help="module name (UV-Vis) or node name (uv_vis)")
    clear.add_argument("device", help="device name, e.g. UV_Spectrometer")

    results = _command(
        commands,
        "results",
        "a job's experiments: parameters, measured data, derived properties",
        "Per experiment: its parameters, the measured data (flattened to columns in CSV, "
        "arrays as JSON text in one cell) and the derived properties. Without --csv/--json, a "
        "readable summary; with --out, the format follows the file name unless given.",
        "  octopus results J0003\n"
        "  octopus results J0003 --json\n"
        "  octopus results J0003 --csv --out j3.csv",
    )
    results.add_argument("job_id", metavar="ID", help="job id, e.g. J0003")
    form = results.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="one row per experiment")
    form.add_argument("--json", action="store_true", help="the data as measured")
    results.add_argument("--out", metavar="FILE", help="write to FILE instead of the terminal")

    gantt = _command(
        commands,
        "gantt",
        "the schedule as a Gantt chart: a PNG/SVG file or a live window",
        "One row per device (grouped by module), a bar per step coloured by job: the plan ahead "
        "hollow, what ran filled, standby steps on their own rows. --out draws the current "
        "schedule, or a simulated scenario with --scenario; --live opens a window that follows "
        "the lab.",
        "  octopus gantt --out now.png\n"
        "  octopus gantt --live\n"
        "  octopus gantt --scenario fig8-platform-day --policy fcfs --out fcfs.svg",
    )
    gantt.add_argument("--out", metavar="FILE", help="write .png, .svg or .pdf")
    gantt.add_argument("--live", action="store_true", help="a window following the schedule")
    gantt.add_argument(
        "--scenario", metavar="NAME_OR_FILE", help="simulate this scenario instead of the lab"
    )
    gantt.add_argument("--policy", default="planner", help="policy of the simulation (planner)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="octopus",
        description="Run and use an OCTOPUS self-driving lab over ROS 2.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    parser.add_argument("--user", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=5.0, help=argparse.SUPPRESS)
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

    _add_lab_commands(commands)

    simulate = commands.add_parser(
        "simulate",
        help="run a scenario in the digital twin (virtual time)",
        description="Simulate a scenario file (or a built-in scenario name) under a policy.",
    )
    simulate.add_argument("scenario", help="scenario YAML file or built-in name")
    simulate.add_argument("--policy", default="planner", help="scheduling policy")
    simulate.add_argument("--json", action="store_true", help="print the full report as JSON")
    simulate.add_argument(
        "--policy-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a policy option, repeatable (e.g. improve=cpsat for the planner)",
    )

    sign = commands.add_parser(
        "sign",
        help="print the auth string of a request, for a ros2 line on a lab that requires it",
        description="Sign a request with your key ($OCTOPUS_KEY, or your entry in the lab "
        "secrets file $OCTOPUS_SECRETS) and print its auth string, valid once and for 5 "
        "minutes. REQUEST and its values: submit_job FILE | hold_job/resume_job/cancel_job ID |"
        " set_emergency_stop true|false REASON | clear_device_error DEVICE.",
    )
    sign.add_argument("request", choices=SIGNABLE, help="the request to sign")
    sign.add_argument("values", nargs="+", help="its values (see above)")
    sign.add_argument("--user", default=argparse.SUPPRESS, help="who signs (default: you)")

    commands.add_parser(
        "bench",
        help="published scenarios under every policy, beside the published numbers",
    )
    commands.add_parser(
        "bench-live",
        help="the live machinery on real nodes: per-action overhead, live day vs twin day, "
        "a lab of 50 modules (octopus bench-live --help; also octopus bench --live)",
        add_help=False,  # its own parser answers --help: see main()
    )
    commands.add_parser(
        "demo",
        help="the published 11-job day on the simulated lab, end to end (octopus demo --help)",
        add_help=False,  # its own parser answers --help: see main()
    )
    return parser


SIGNABLE = {
    "submit_job": ("script",),
    "hold_job": ("job_id",),
    "resume_job": ("job_id",),
    "cancel_job": ("job_id",),
    "set_emergency_stop": ("engaged", "reason"),
    "clear_device_error": ("device",),
}


def sign_request(args: argparse.Namespace) -> int:
    """``octopus sign``: the auth string of one request, printed for a ros2 command line."""
    from octopus_client.client import default_user, user_key
    from octopus_scheduler.service.identity import sign

    names = SIGNABLE[args.request]
    values = list(args.values)
    if args.request == "set_emergency_stop" and len(values) == 1:
        values.append("")  # no reason
    if len(values) != len(names):
        raise ClientError(f"{args.request} takes {' '.join(names)}", 2)
    fields = dict(zip(names, values, strict=True))
    if args.request == "submit_job":
        path = fields["script"]
        fields["script"] = sys.stdin.read() if path == "-" else open(path).read()  # noqa: SIM115
    if args.request == "set_emergency_stop" and fields["engaged"] not in ("true", "false"):
        raise ClientError("set_emergency_stop: engaged is true or false", 2)
    user = getattr(args, "user", None) or default_user()
    key = user_key(user)
    if key is None:
        raise ClientError(f"no key for '{user}': set OCTOPUS_KEY or OCTOPUS_SECRETS", 2)
    print(sign(key, args.request, fields, user))
    return 0


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    if command == "sign":
        return sign_request
    if command == "submit":
        from octopus_client.commands.jobs import submit

        return submit
    if command == "status":
        from octopus_client.commands.jobs import status

        return status
    if command in ("hold", "resume", "cancel"):
        from octopus_client.commands.jobs import job_command

        return job_command
    if command == "estop":
        from octopus_client.commands.jobs import estop

        return estop
    if command == "clear-error":
        from octopus_client.commands.jobs import clear_error

        return clear_error
    if command == "watch":
        from octopus_client.commands.watch import watch

        return watch
    if command == "results":
        from octopus_client.commands.results import results

        return results
    if command == "gantt":
        from octopus_client.commands.gantt import gantt

        return gantt
    raise AssertionError(command)


def main(argv: Sequence[str] | None = None) -> int:
    # a shell's background job starts with SIGINT ignored: Ctrl-C must still stop a command
    signal.signal(signal.SIGINT, signal.default_int_handler)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:  # the demo parses its own options
        from octopus_client.demo import main as demo_main

        return int(demo_main(argv[1:]) or 0)
    if argv[:1] == ["bench-live"] or (argv[:1] == ["bench"] and "--live" in argv[1:]):
        from octopus_client.bench_live import main as bench_live_main  # its own options

        return int(bench_live_main([a for a in argv[1:] if a != "--live"]) or 0)
    args = build_parser().parse_args(argv)
    if args.command == "lab":
        from octopus_client.commands.lab import lab_up

        return lab_up(args)
    if args.command == "simulate":
        from octopus_scheduler.twin.simulate_cli import main as simulate_main

        forwarded = [args.scenario, "--policy", args.policy] + (["--json"] if args.json else [])
        forwarded += [f"--policy-option={option}" for option in args.policy_option]
        return int(simulate_main(forwarded) or 0)
    if args.command == "bench":
        from octopus_scheduler.twin.bench import main as bench_main

        return int(bench_main([]) or 0)
    try:
        return _handler(args.command)(args)
    except ClientError as error:
        print(f"octopus {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `octopus status | head`
        return 0
    except Exception as error:  # a bug or an environment problem: still one line, unless asked
        if os.environ.get("OCTOPUS_DEBUG"):
            raise
        print(
            f"octopus {args.command}: unexpected {type(error).__name__}: {error} "
            "(OCTOPUS_DEBUG=1 shows where)",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
