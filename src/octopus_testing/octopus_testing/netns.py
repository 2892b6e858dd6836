"""Simulated hosts for multi-host tests: Linux network namespaces joined by veth pairs.

``hosts(["sched", "modules"], tag="7")`` creates one namespace per host, a veth pair from the
first host to each other host (a star, each pair on its own /30 of 10.213.0.0/16), brings the
links and each namespace's loopback up, and deletes all of it on exit, also when the body
raises. With ``router=True`` the first host routes between the others. A namespace has no
other link and no default route, so DDS traffic started inside cannot leave the machine:
``Hosts.check_isolated`` proves it before anything is started.

Needs root (CAP_NET_ADMIN) and iproute2; ``netns_unavailable()`` says why not, for a skip.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

SUBNET = ipaddress.ip_network("10.213.0.0/16")
IFNAME_MAX = 15  # Linux interface names are at most 15 characters


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here (a reason for pytest.skip), or None if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"octopus-probe-{os.getpid()}"
    try:
        made = ip("netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"`ip netns add` fails: {made.stderr.strip()}"
        ran = subprocess.run(
            ["ip", "netns", "exec", probe, "true"], capture_output=True, text=True, timeout=30
        )
        if ran.returncode != 0:
            return f"`ip netns exec` fails: {ran.stderr.strip()}"
    finally:
        ip("netns", "delete", probe, check=False)
    return None


@dataclass
class Link:
    """One veth pair: ``hosts[0]`` end ``names[0]`` with ``addresses[0]``, and so on."""

    hosts: tuple[str, str]
    names: tuple[str, str]
    addresses: tuple[str, str]
    prefix: int


@dataclass
class Hosts:
    """The namespaces of one test, by host name; ``links`` joins them."""

    namespaces: dict[str, str]  # host -> namespace name
    links: list[Link] = field(default_factory=list)

    def prefix(self, host: str) -> list[str]:
        """argv prefix that runs a command on ``host``: ``ip netns exec <namespace>``."""
        return ["ip", "netns", "exec", self.namespaces[host]]

    def run(
        self, host: str, argv: Sequence[str], check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix(host), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def address(self, host: str) -> str:
        """``host``'s address on its first link."""
        for link in self.links:
            if host in link.hosts:
                return link.addresses[link.hosts.index(host)]
        raise KeyError(host)

    def peers(self, host: str) -> list[str]:
        """Addresses of every host ``host`` has a link to."""
        return [
            link.addresses[1 - link.hosts.index(host)] for link in self.links if host in link.hosts
        ]

    def interface(self, host: str, other: str) -> str:
        """``host``'s end of the link to ``other``."""
        for link in self.links:
            if set(link.hosts) == {host, other}:
                return link.names[link.hosts.index(host)]
        raise KeyError((host, other))

    def set_link(self, host: str, other: str, up: bool) -> None:
        """Take ``host``'s end of the link to ``other`` down or up (the cable is pulled)."""
        state = "up" if up else "down"
        ip("-n", self.namespaces[host], "link", "set", self.interface(host, other), state)

    def wait_running(self, host: str, timeout: float = 10.0) -> None:
        """Wait until every link of ``host`` carries (operstate UP). The kernel reports a new
        veth's carrier up to a second late, and a DDS participant created before that sees
        only loopback: it announces 127.0.0.1, and Fast DDS never looks again."""
        namespace = self.namespaces[host]
        own = [link.names[link.hosts.index(host)] for link in self.links if host in link.hosts]
        deadline = time.monotonic() + timeout
        while True:
            shown = json.loads(ip("-n", namespace, "-j", "link", "show").stdout)
            states = {entry["ifname"]: entry.get("operstate") for entry in shown}
            if all(states.get(name) == "UP" for name in own):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"links of {namespace} not up in {timeout} s: {states}")
            time.sleep(0.05)

    def interfaces(self, host: str) -> set[str]:
        out = ip("-n", self.namespaces[host], "-o", "link", "show").stdout
        # "2: veth0@if3: <...>": the name ends at '@' (the peer's index) or ':'
        return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line}

    def check_isolated(self) -> None:
        """Raise unless every namespace holds only lo and its own veth ends, without a default
        route: nothing started inside can reach a real network."""
        for host, namespace in self.namespaces.items():
            own = {link.names[link.hosts.index(host)] for link in self.links if host in link.hosts}
            found = self.interfaces(host)
            if found != {"lo"} | own:
                raise RuntimeError(f"namespace {namespace} has links {found}, expected lo + {own}")
            default = ip("-n", namespace, "route", "show", "default").stdout.strip()
            default6 = ip("-n", namespace, "-6", "route", "show", "default").stdout.strip()
            if default or default6:
                raise RuntimeError(f"namespace {namespace} has a default route: {default}")


def _names(hosts: Sequence[str], tag: str) -> dict[str, str]:
    return {host: f"octopus-{tag}-{host}" for host in hosts}


def _veth_name(tag: str, index: int, end: str) -> str:
    name = f"oc{tag}l{index}{end}"
    if len(name) > IFNAME_MAX:
        raise ValueError(f"interface name {name!r} is too long: shorten the tag {tag!r}")
    return name


def _remove(namespaces: dict[str, str]) -> None:
    # deleting a namespace deletes the veth ends in it, and with them their peers
    for namespace in namespaces.values():
        ip("netns", "delete", namespace, check=False)


@contextmanager
def hosts(names: Sequence[str], tag: str, router: bool = False) -> Iterator[Hosts]:
    """Namespaces for ``names``, the first linked to each other one; removed on exit.

    ``tag`` makes the names of this test's namespaces and links its own (a session's domain
    id: no other live session holds it); leftovers of a killed run with the same tag are
    removed first. ``router``: the first host forwards between the others, which reach each
    other through it, on subnets of their own (as PCs behind a router: multicast, so DDS's
    automatic discovery, does not cross it).
    """
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"need two or more distinct host names: {names}")
    namespaces = _names(names, tag)
    _remove(namespaces)  # a killed run with our tag (it held our domain id) left them
    result = Hosts(namespaces)
    blocks = SUBNET.subnets(new_prefix=30)
    try:
        for namespace in namespaces.values():
            ip("netns", "add", namespace)
            ip("-n", namespace, "link", "set", "lo", "up")
        first = names[0]
        for index, other in enumerate(names[1:]):
            block = next(blocks)
            a, b = (str(address) for address in list(block.hosts())[:2])
            ends = (_veth_name(tag, index, "a"), _veth_name(tag, index, "b"))
            # created inside the first namespace: the pair never exists in the host's own
            ip("-n", namespaces[first], "link", "add", ends[0], "type", "veth",
               "peer", "name", ends[1], "netns", namespaces[other])  # fmt: skip
            for host, end, address in ((first, ends[0], a), (other, ends[1], b)):
                namespace = namespaces[host]
                ip("-n", namespace, "addr", "add", f"{address}/30", "dev", end)
                # no route for multicast needed: Fast DDS picks the interface of each send
                ip("-n", namespace, "link", "set", end, "up")
            result.links.append(Link((first, other), ends, (a, b), 30))
            if router:
                ip("-n", namespaces[other], "route", "add", str(SUBNET), "via", a)
        if router:
            result.run(first, ["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])
        result.check_isolated()
        for host in names:
            result.wait_running(host)
        yield result
    finally:
        _remove(namespaces)
