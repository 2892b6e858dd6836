"""How long the client looks for a server, over real DDS: a lab with no node on the graph is
reported after the timeout; while a node of the lab is up, a server not found yet is waited for
(on a loaded machine discovery can take seconds) up to the discovery limit, then named."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from octopus_client.client import OctopusClient
from octopus_client.commands.errors import ClientError
from octopus_interfaces.srv import ClearDeviceError
from octopus_testing.lab import start_module


def test_a_server_of_a_lab_that_is_up_is_waited_for_then_named(
    node_processes, tmp_path: Path
) -> None:
    module = start_module(node_processes, "uv_vis", tmp_path / "ledger.json")
    module.wait_for_output("ready", timeout=30)
    with OctopusClient(user="ann", timeout_s=0.5, discovery_limit_s=3.0) as client:
        found = client.call(
            ClearDeviceError,
            "modules/uv_vis/clear_device_error",
            ClearDeviceError.Request(device="UV_Spectrometer", user="ann"),
        )
        assert found.success, found.message
        started = time.monotonic()
        with pytest.raises(ClientError, match=r"though the lab's nodes are up") as missing:
            client.call(ClearDeviceError, "modules/no_such_module/clear_device_error", found)
        waited = time.monotonic() - started
    assert "/octopus/modules/no_such_module/clear_device_error not found within 3 s" in str(
        missing.value
    )
    assert 3.0 <= waited < 5.0


def test_a_lab_with_no_node_on_the_graph_is_reported_after_the_timeout(
    node_processes, tmp_path: Path
) -> None:
    module = start_module(node_processes, "uv_vis", tmp_path / "ledger.json")  # another lab
    module.wait_for_output("ready", timeout=30)
    with OctopusClient(namespace="/no_lab_here", timeout_s=0.5, discovery_limit_s=3.0) as client:
        started = time.monotonic()
        with pytest.raises(ClientError, match=r"is the lab up\? \(octopus lab up\)") as missing:
            client.list_jobs()
        waited = time.monotonic() - started
    assert "nothing answered on /no_lab_here/list_jobs within 0.5 s" in str(missing.value)
    assert waited < 2.0
