"""The environment every test process runs in: own domain, discovery on this machine only."""

from __future__ import annotations

import os
from pathlib import Path

from octopus_testing.domain import claim_domain_id


def profile_file() -> Path | None:
    """The project's Fast DDS profile (fast discovery, 5 s lease), if the workspace has one."""
    root = os.environ.get("OCTOPUS_ROOT")
    if not root:
        return None
    path = Path(root) / "tools" / "fastdds_profile.xml"
    return path if path.is_file() else None


def configure_test_environment() -> int:
    """Claim a domain and export it with LOCALHOST discovery; returns the domain id.

    Tests never let discovery leave the machine, whatever the caller's shell says.
    """
    domain_id = claim_domain_id()
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.pop("ROS_STATIC_PEERS", None)
    profile = profile_file()
    if profile is not None:
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    return domain_id
