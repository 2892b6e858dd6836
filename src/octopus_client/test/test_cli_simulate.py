"""`octopus simulate` forwards its options to the digital twin."""

from __future__ import annotations

import json

from octopus_client.cli import main


def test_policy_options_reach_the_simulator(capsys) -> None:
    assert main(["simulate", "fig5d-parallelisation", "--policy-option", "bogus"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["simulate", "fig5d-parallelisation", "--policy-option", "improve=nope"]) != 0
    capsys.readouterr()
    argv = ["simulate", "fig5d-parallelisation", "--json", "--policy-option", "improve=cpsat"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["policy"] == "planner" and report["sums"]["total"] > 0
