"""A lab across two hosts: the scheduler (and the user's client) on host "sched", the module
nodes on host "modules". Each host is a network namespace of its own joined to the other by
a veth pair; DDS runs over UDP on that link only (no shared memory: the SHM transport is off),
so pulling the link must cost the scheduler its modules, and plugging it back returns them.
Behind a router (two subnets, no multicast across) the hosts find each other only through
ROS_STATIC_PEERS.

Numbers (discovery over the link, down detection, return) are printed: run with ``-s``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from octopus_testing.lab import (
    HEARTBEAT_S,
    SYNTHESIS_JOB,
    start_module,
    start_scheduler,
    write_lab_file,
)
from octopus_testing.netns import Hosts, hosts, netns_unavailable
from octopus_testing.processes import NodeProcess, NodeProcesses

MODULES = {"batch_synthesis": "BatchSynthesis", "uv_vis": "UV-Vis"}
# the user's command line, as `octopus` runs it
OCTOPUS = [sys.executable, "-m", "octopus_client.cli"]

# a synthesis whose vial goes on to the spectrometer: both modules over the link
SYNTHESIS_AND_MEASUREMENT = """
metadata: {name: over the link, owner: whoever}
campaign: {kind: manual, experiments: [{React.Time: 10 min}]}
process:
  Synthesis:
    BatchSynthesis:
      sequence:
        - PrepareContainer
        - Mix
        - React
        - {task: MoveContainer, params: {Target: UV-Vis}}
      fixedParams: {Temperature: 60 C}
  Characterization:
    UV-Vis: {sequence: [PrepareCuvette, GetAbs, StoreCuvette]}
"""

# The user's view of module liveness: the scheduler's latched resources topic, one line per
# message, from a client process on the scheduler's host.
RESOURCES_PROBE = """
import time
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from octopus_interfaces.msg import ResourceState

rclpy.init()
node = rclpy.create_node("resources_probe")
latched = QoSProfile(
    depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
)

def show(message):
    states = " ".join(f"{m.module}={'up' if m.up else 'down'}" for m in message.modules)
    print(f"{time.time():.3f} resources {states}", flush=True)

node.create_subscription(ResourceState, "/octopus/resources", show, latched)
print("probe ready", flush=True)
try:
    rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException):  # SIGTERM at the end of the test
    pass
"""

# ROS log lines carry the wall clock: the processes' own times of events, not our poll's
LOG_TIME = re.compile(r"^\[\w+\] \[(\d+\.\d+)\] \[[^\]]*\]: (.*)$", re.MULTILINE)


class HostProcesses:
    """Starts processes on one host (in its namespace, with its DDS environment) and leaves
    stopping them to the test's NodeProcesses. lab.py's start_module/start_scheduler only call
    ``start``, so they take this in place of a NodeProcesses."""

    def __init__(
        self,
        processes: NodeProcesses,
        network: Hosts,
        host: str,
        static_peers: Sequence[str],
        suffix: str = "",
    ) -> None:
        self.processes = processes
        self.prefix = network.prefix(host)
        self.env = dds_environment(static_peers)
        self.suffix = suffix  # a node started again keeps its first log

    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str] | None = None
    ) -> NodeProcess:
        return self.processes.start(
            name + self.suffix, [*self.prefix, *argv], {**self.env, **(env or {})}
        )


def dds_environment(static_peers: Sequence[str]) -> dict[str, str]:
    """What a PC of a multi-PC lab sets: discovery beyond localhost, over UDP. SUBNET is safe
    here only because a namespace's links are its veth ends (check_isolated)."""
    return {
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET",
        # the other PCs by address: discovery where multicast does not reach
        "ROS_STATIC_PEERS": ";".join(static_peers),
        # one machine, one /dev/shm: a Fast DDS that takes both namespaces for one host (its
        # host id from the machine, not the addresses) would bypass the link over shared memory
        "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4",
        "RCUTILS_CONSOLE_OUTPUT_FORMAT": "[{severity}] [{time}] [{name}]: {message}",
        "PYTHONUNBUFFERED": "1",
    }


def event_time(process: NodeProcess, pattern: str, after: float = 0.0) -> float:
    """Wall-clock stamp of the first log line of ``process`` matching ``pattern`` at or after
    ``after``."""
    for stamp, message in LOG_TIME.findall(process.output()):
        if float(stamp) >= after and re.search(pattern, message):
            return float(stamp)
    raise LookupError(f"{process.name} logged no {pattern!r} after {after}:\n{process.output()}")


def wait_for_line(process: NodeProcess, pattern: str, after: float, timeout: float) -> float:
    """Wait for a probe line ``<time> ...`` matching ``pattern`` stamped at or after ``after``;
    returns its stamp."""
    regex = re.compile(rf"^(\d+\.\d+) .*{pattern}", re.MULTILINE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for match in regex.finditer(process.output()):
            if float(match.group(1)) >= after:
                return float(match.group(1))
        time.sleep(0.05)
    raise TimeoutError(f"no {pattern!r} from {process.name} in {timeout} s:\n{process.output()}")


def veth_bytes(network: Hosts, host: str, other: str) -> int:
    """Bytes received on ``host``'s end of the link to ``other``."""
    name = network.interface(host, other)
    shown = network.run(host, ["ip", "-s", "-j", "link", "show", "dev", name]).stdout
    return int(json.loads(shown)[0]["stats64"]["rx"]["bytes"])


def shm_mappings(process: NodeProcess) -> list[str]:
    maps = Path(f"/proc/{process.pid}/maps").read_text()
    return sorted({line.split()[-1] for line in maps.splitlines() if "/dev/shm/fast" in line})


def submit(client: HostProcesses, folder: Path, name: str, script: str) -> NodeProcess:
    path = folder / f"{name}.yaml"
    path.write_text(script)
    argv = [*OCTOPUS, "submit", str(path), "--wait", "--user", "alice", "--timeout", "15"]
    return client.start(name, argv)


def require_netns() -> None:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(f"multi-host tests need network namespaces: {reason}")


@contextmanager
def running(folder: Path) -> Iterator[NodeProcesses]:
    processes = NodeProcesses(folder)
    try:
        yield processes
    finally:
        processes.stop_all()


@pytest.fixture
def folder(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The lab's files and the nodes' logs, removed at the end (pytest would keep tmp_path);
    the logs are printed first when the test failed."""
    with tempfile.TemporaryDirectory(prefix="octopus-multi-host-") as made:
        try:
            yield Path(made)
        finally:
            reports = [getattr(request.node, f"rep_{when}", None) for when in ("setup", "call")]
            if any(report is not None and report.failed for report in reports):
                for log in sorted(Path(made).glob("*.log")):
                    print(f"----- {log.name} -----\n{log.read_text(errors='replace')}")


@pytest.fixture
def network() -> Iterator[Hosts]:
    require_netns()
    # our session holds this domain id: namespace and link names no other session uses
    with hosts(["sched", "modules"], tag=os.environ["ROS_DOMAIN_ID"]) as made:
        yield made


@pytest.fixture
def lab(network: Hosts, folder: Path) -> Iterator[dict]:
    """Scheduler and probe on "sched", both modules on "modules"; discovery over the link
    measured from the nodes' own log stamps. Processes stop before their namespaces go and
    before their folder goes (fixtures are torn down in reverse)."""
    with running(folder) as processes:
        on = {
            host: HostProcesses(processes, network, host, network.peers(host))
            for host in ("sched", "modules")
        }
        ledger = folder / "samples.json"
        modules = {m: start_module(on["modules"], m, ledger) for m in MODULES}
        scheduler = start_scheduler(on["sched"], write_lab_file(folder, list(MODULES)))
        probe = on["sched"].start("resources_probe", [sys.executable, "-c", RESOURCES_PROBE])
        discovery = discovered(scheduler, {MODULES[m]: p for m, p in modules.items()})
        probe.wait_for_output("probe ready", timeout=30)
        print(f"\ndiscovery over the link (all nodes ready -> first heartbeat heard): {discovery}")
        yield {
            "on": on,
            "folder": folder,
            "modules": modules,
            "scheduler": scheduler,
            "probe": probe,
            "discovery": discovery,
        }


def discovered(scheduler: NodeProcess, modules: dict[str, NodeProcess]) -> dict[str, float]:
    """Wait for every node's "ready" and the scheduler's first heartbeat of every module (by
    module name); seconds from the last node ready to each first heartbeat, by the nodes' own
    stamps."""
    for process in (*modules.values(), scheduler):
        process.wait_for_output("ready", timeout=30)
    ready = max(event_time(p, "ready") for p in (*modules.values(), scheduler))
    for module in modules:
        scheduler.wait_for_output(rf"module {module} is up \(first heartbeat\)", timeout=20)
    return {m: event_time(scheduler, rf"module {m} is up") - ready for m in modules}


def test_scheduler_and_modules_on_two_hosts_over_the_link(network: Hosts, lab: dict) -> None:
    network.check_isolated()  # again: nothing the nodes did added a way out
    scheduler, probe = lab["scheduler"], lab["probe"]
    # every node runs on UDP only: no Fast DDS shared-memory segment is mapped
    for process in (scheduler, probe, *lab["modules"].values()):
        assert shm_mappings(process) == [], process.name
    assert all(0 <= t < 10 for t in lab["discovery"].values()), lab["discovery"]

    received = veth_bytes(network, "sched", "modules")
    synthesis = SYNTHESIS_JOB.format(name="first", react=10)
    first = submit(lab["on"]["sched"], lab["folder"], "client_first", synthesis)
    assert first.popen.wait(timeout=60) == 0, first.output()
    assert "J0001" in first.output()
    # the steps ran on the other host: their goals and results crossed the link
    crossed = veth_bytes(network, "sched", "modules") - received
    print(f"first job: {crossed} bytes received over the link by the scheduler's host")
    assert crossed > 10_000

    # the cable is pulled on the modules' side: the scheduler hears no heartbeat
    pulled = time.time()
    network.set_link("modules", "sched", up=False)
    for module in MODULES.values():
        scheduler.wait_for_output(rf"module {module} went down: no heartbeat", timeout=10)
    seen_down = wait_for_line(probe, r"BatchSynthesis=down", pulled, timeout=10)
    down = {
        m: event_time(scheduler, rf"module {m} went down: no heartbeat", pulled) - pulled
        for m in MODULES.values()
    }
    print(
        f"down detection (link down -> marked down): {down}; "
        f"client on the scheduler host saw it after {seen_down - pulled:.2f} s"
    )
    # two missed heartbeats, the watchdog's period, a loaded machine's slack
    assert all(0 < t < 2 * HEARTBEAT_S + 2.0 for t in down.values()), down

    # plugged back in: the modules return without a restart of any node
    plugged = time.time()
    network.set_link("modules", "sched", up=True)
    for module in MODULES.values():
        scheduler.wait_for_output(rf"module {module} is back", timeout=30)
    seen_up = wait_for_line(probe, r"BatchSynthesis=up UV-Vis=up", plugged, timeout=10)
    back = {
        m: event_time(scheduler, rf"module {m} is back", plugged) - plugged
        for m in MODULES.values()
    }
    print(f"return (link up -> module back): {back}; client saw it after {seen_up - plugged:.2f} s")

    second = submit(lab["on"]["sched"], lab["folder"], "client_second", SYNTHESIS_AND_MEASUREMENT)
    assert second.popen.wait(timeout=60) == 0, second.output()
    assert "J0002" in second.output()
    status = lab["on"]["sched"].start(
        "client_status", [*OCTOPUS, "status", "--all", "--timeout", "15"]
    )
    assert status.popen.wait(timeout=60) == 0, status.output()
    rows = [line.split() for line in status.output().splitlines() if line.startswith("J000")]
    assert sorted(row[0] for row in rows) == ["J0001", "J0002"], status.output()
    assert all("succeeded" in row for row in rows), status.output()
    # nothing crossed over shared memory meanwhile either
    for process in (scheduler, *lab["modules"].values()):
        assert shm_mappings(process) == [], process.name


@pytest.fixture
def routed(folder: Path) -> Iterator[tuple[Hosts, NodeProcesses]]:
    """Hosts "sched" and "modules" on subnets of their own behind host "router"."""
    require_netns()
    tag = os.environ["ROS_DOMAIN_ID"]
    with hosts(["router", "sched", "modules"], tag=tag, router=True) as network:
        with running(folder) as processes:
            yield network, processes


def test_modules_behind_a_router_are_found_through_static_peers(
    routed: tuple[Hosts, NodeProcesses], folder: Path
) -> None:
    """Multicast does not cross a router: automatic discovery alone finds nothing, each PC
    naming the other in ROS_STATIC_PEERS does."""
    network, processes = routed
    peer = {"sched": network.address("modules"), "modules": network.address("sched")}

    def start(suffix: str, peers: bool) -> tuple[NodeProcess, dict[str, NodeProcess]]:
        """A lab of its own: a scheduler restarted on a database in which its modules went
        down does not take them back up (a known bug), and this test is about discovery."""
        on = {
            host: HostProcesses(processes, network, host, [peer[host]] if peers else [], suffix)
            for host in ("sched", "modules")
        }
        lab_folder = folder / suffix.strip("_")
        lab_folder.mkdir()
        ledger = lab_folder / "samples.json"
        modules = {MODULES[m]: start_module(on["modules"], m, ledger) for m in MODULES}
        # both modules: BatchSynthesis's description names UV-Vis's robot arm
        return start_scheduler(on["sched"], write_lab_file(lab_folder, list(MODULES))), modules

    scheduler, modules = start("_no_peers", peers=False)
    for process in (*modules.values(), scheduler):
        process.wait_for_output("ready", timeout=30)
    with pytest.raises(TimeoutError):  # found within ~3 s when on one link (the other test)
        scheduler.wait_for_output("module .* is up", timeout=5)
    for process in (scheduler, *modules.values()):
        process.stop()

    scheduler, modules = start("_peers", peers=True)
    discovery = discovered(scheduler, modules)
    print(f"\ndiscovery through the router by static peers: {discovery}")
    assert all(0 <= t < 10 for t in discovery.values()), discovery
    client = HostProcesses(processes, network, "sched", [peer["sched"]])
    job = submit(client, folder, "client_routed", SYNTHESIS_JOB.format(name="routed", react=10))
    assert job.popen.wait(timeout=60) == 0, job.output()
    network.check_isolated()
