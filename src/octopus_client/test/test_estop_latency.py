"""The e-stop latency on a live lab, bounded: the demo lab's 4 modules busy (BatchSynthesis's
stirrer the NAMUR driver on the pty emulator), 20 e-stops through SetEmergencyStop as
`octopus estop` calls it. Every trial stops every module and puts both stop commands on the
serial wire, and the median latency from the call is under 200 ms. The p99 of 20 trials is their
slowest, which a busy shared machine decides (0.25-1.1 s seen here while the median was 14-24 ms):
it is printed, not asserted. The README's figures come from `python -m
octopus_client.estop_bench` (100 trials)."""

from __future__ import annotations

import json
from pathlib import Path

import psutil

from octopus_client import estop_bench

TRIALS = 20


def test_estop_stops_every_busy_module_and_the_serial_stirrer(
    tmp_path: Path,
) -> None:
    # the pytest plugin's ROS_DOMAIN_ID and LOCALHOST discovery are in os.environ already
    result = estop_bench.run(trials=TRIALS, warmup=2, out=tmp_path)
    table = estop_bench.report(result)
    print(table)
    (tmp_path / "estop_latency.json").write_text(json.dumps(result, indent=1))

    assert result["trials"] == TRIALS
    for key in ("all_modules_stopped", "serial_stop_on_wire"):
        stats = result[key]
        assert stats["timeouts"] == 0, f"{key}: not stopped within 5 s in some trials\n{table}"
        assert stats["p50"] < estop_bench.GOAL_S, f"{key}: median over 200 ms\n{table}"
    # every trial saw all 4 modules stop and both stop commands (heater, motor) on the wire
    for trial in result["per_trial"]:
        assert len(trial["module_stopped_s"]) == 4
        assert set(trial["wire_s"]) == {"STOP_1", "STOP_4"}
    # every node process of the lab has exited
    assert len(result["node_pids"]) == 5
    assert not [pid for pid in result["node_pids"] if psutil.pid_exists(pid)]
