"""pytest plugin for every OCTOPUS package's tests (loaded by the workspace's conftest.py).

- The session claims its own ROS_DOMAIN_ID and forces LOCALHOST discovery before anything
  imports rclpy's context.
- ``ros``: an in-process node with its own context, torn down safely.
- ``node_processes``: start node processes; all are stopped after the test, their logs shown
  when it fails.
- At the end, Fast DDS shared memory left by killed processes is cleaned.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from octopus_testing.domain import release_domain_ids
from octopus_testing.environment import configure_test_environment
from octopus_testing.processes import NodeProcesses
from octopus_testing.shared_memory import clean_fastdds_shared_memory


def pytest_configure(config: pytest.Config) -> None:
    domain_id = configure_test_environment()
    config.stash[_domain_key] = domain_id


def pytest_report_header(config: pytest.Config) -> str:
    return f"ROS_DOMAIN_ID={config.stash[_domain_key]} ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST"


def pytest_unconfigure(config: pytest.Config) -> None:
    clean_fastdds_shared_memory()
    release_domain_ids()


_domain_key = pytest.StashKey[int]()


@pytest.fixture
def ros() -> Iterator[object]:
    from octopus_testing.ros_session import RosSession  # rclpy only for tests that use it

    session = RosSession()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def node_processes(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[NodeProcesses]:
    processes = NodeProcesses(tmp_path)
    try:
        yield processes
    finally:
        processes.stop_all()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            for process in processes.started:
                print(f"----- output of {process.name} (pid {process.pid}) -----")
                print(process.output())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
