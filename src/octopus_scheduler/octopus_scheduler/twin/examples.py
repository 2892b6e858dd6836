"""Small example labs and job scripts (used by tests, docs and the random generator's checks)."""

from __future__ import annotations

from typing import Any


def tiny_lab_data(capacity: int = 2) -> dict[str, Any]:
    """Two modules sharing an arm: Synth (Prep active 10 s, React standby Time) and Meas."""
    return {
        "modules": {
            "Synth": {
                "devices": ["ArmA", "Pump"],
                "slots": {"stirrer": capacity},
                "consumables": {"vial": {"stock": 100, "low": 2}},
                "tasks": {
                    "Prep": {
                        "per": "sample",
                        "mask": ["ArmA"],
                        "duration": {"per_sample": 10},
                        "consumes": {"vial": 1},
                    },
                    "Add": {
                        "per": "sample",
                        "mask": ["Pump"],
                        "params": {"Volume": {"unit": "uL", "min": 0, "max": 1000}},
                        "duration": {"per_sample": 5},
                    },
                    "React": {
                        "per": "batch",
                        "kind": "standby",
                        "params": {"Time": {"unit": "s", "min": 0, "max": 10000}},
                        "duration": {"param": "Time"},
                    },
                },
            },
            "Meas": {
                "devices": ["Spec"],
                "slots": {"holder": 1},
                "tasks": {"Read": {"per": "sample", "mask": ["Spec"], "duration": 20}},
            },
        },
        "masks": {"Meas.Read": ["ArmA"]},
    }


def synth_job(
    batch: int = 1, react: str = "100 s", owner: str = "alice", measure: bool = False
) -> dict[str, Any]:
    process: dict[str, Any] = {
        "Synthesis": {
            "Synth": {
                "sequence": ["Prep", "Add", {"task": "React", "params": {"Time": react}}],
                "fixedParams": {"Volume": "100 uL"},
            }
        }
    }
    if measure:
        process["Characterization"] = {"Meas": {"sequence": ["Read"]}}
    return {
        "metadata": {"name": "j", "owner": owner},
        "campaign": {"kind": "manual", "experiments": [{} for _ in range(batch)]},
        "process": process,
    }


def task_spans(report: Any) -> dict[str, tuple[float, float]]:
    """A simulated timeline as "job:chunk:task#sample" -> (start, end), merged over the steps of
    a task ("#b" for a batch task): the shape exact-timeline tests assert on."""
    out: dict[str, tuple[float, float]] = {}
    for row in report.timeline:
        suffix = row["step_id"].rsplit(".", 1)[1]
        sample = suffix.split("#")[1] if "#" in suffix else "b"
        chunk = row["step_id"].split("/")[1]
        key = f"{row['job_id']}:{chunk}:{row['task']}#{sample}"
        s, e = out.get(key, (row["start"], row["end"]))
        out[key] = (min(s, row["start"]), max(e, row["end"]))
    return out
