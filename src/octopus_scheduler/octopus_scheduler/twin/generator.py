"""Seeded generator of random lab scenarios of any size (same seed -> same scenario)."""

from __future__ import annotations

import random
from typing import Any

from octopus_scheduler.twin.scenario import Scenario, parse_scenario

STAGES = ("Synthesis", "Preprocess", "Characterization", "Evaluation")


def random_scenario_data(
    seed: int,
    *,
    jobs: int = 20,
    modules: int = 3,
    load: float = 0.7,
    noise_sigma: float = 0.0,
    failure_probability: float = 0.0,
    bo_share: float = 0.2,
    events: bool = False,
    zones: bool = False,
    priorities: bool = True,
) -> dict[str, Any]:
    """A scenario mapping: random modules, devices, shared devices, slots, tasks and jobs.

    ``load`` scales the arrival rate against the lab's rough capacity (1.0 ~ saturated).
    ``priorities: false`` gives every job priority 0 (the draw is kept, so the rest of the
    scenario is the same).
    ``zones``: some slot types get a temperature zone (``zone_by: <Task>.Temp``) and jobs pick
    temperatures, fixed or per experiment. Zone choices come from their own random stream, so
    the rest of the scenario is the same as without zones.
    """
    rng = random.Random(seed)
    zrng = random.Random(f"zones/{seed}")
    mods: dict[str, Any] = {}
    all_devices: list[str] = []
    for m in range(modules):
        name = f"M{m}"
        devices = [f"{name}_D{d}" for d in range(rng.randint(1, 3))]
        all_devices += devices
        slots = {"pos": rng.randint(2, 8)} if rng.random() < 0.8 else {}
        tasks: dict[str, Any] = {}
        for t in range(rng.randint(1, 3)):
            mask = rng.sample(devices, rng.randint(1, len(devices)))
            steps = [{"name": "work", "kind": "active", "duration": rng.randint(20, 300)}]
            if rng.random() < 0.5:
                steps.append({"name": "wait", "kind": "standby", "duration": {"param": "Time"}})
                if rng.random() < 0.5:
                    steps.append(
                        {"name": "unload", "kind": "active", "duration": rng.randint(10, 60)}
                    )
            task: dict[str, Any] = {
                "per": rng.choice(["sample", "batch"]),
                "mask": mask,
                "steps": steps,
            }
            if any(s["kind"] == "standby" for s in steps):
                task["params"] = {"Time": {"unit": "s", "min": 0, "max": 7200, "default": 600}}
            tasks[f"T{t}"] = task
        mods[name] = {"devices": devices, "slots": slots, "tasks": tasks}
    masks: dict[str, list[str]] = {}
    for name, mod in mods.items():  # shared arms / collision zones across modules
        for tname in mod["tasks"]:
            if rng.random() < 0.2:
                masks[f"{name}.{tname}"] = [rng.choice(all_devices)]
    capacity = {n: (m["slots"].get("pos") if m["slots"] else None) for n, m in mods.items()}
    if zones:
        for mod in mods.values():
            if mod["slots"] and zrng.random() < 0.7:
                tname = zrng.choice(sorted(mod["tasks"]))
                params = mod["tasks"][tname].setdefault("params", {})
                params["Temp"] = {"unit": "C", "min": 20, "max": 200, "default": 25}
                mod["slots"]["pos"] = {"capacity": mod["slots"]["pos"], "zone_by": f"{tname}.Temp"}
    job_list = []
    t = 0.0
    mean_gap = 600.0 / max(load, 1e-3)
    for j in range(jobs):
        route_mods = rng.sample(list(mods), rng.randint(1, min(3, len(mods))))
        caps = [capacity[m] for m in route_mods if capacity[m] is not None]
        max_batch = min(caps) if caps else 4
        batch = rng.randint(1, max(1, min(max_batch, 6)))
        process: dict[str, Any] = {}
        for i, m in enumerate(route_mods):
            stage = STAGES[min(i, len(STAGES) - 1)]
            seq = []
            for tname in rng.sample(list(mods[m]["tasks"]), rng.randint(1, len(mods[m]["tasks"]))):
                item: Any = tname
                params = mods[m]["tasks"][tname].get("params", {})
                if "Time" in params:
                    item = {"task": tname, "params": {"Time": rng.choice([60, 300, 900, 1800])}}
                if "Temp" in params and zrng.random() < 0.8:
                    item = item if isinstance(item, dict) else {"task": tname, "params": {}}
                    item["params"]["Temp"] = zrng.choice([25, 60, 80])
                seq.append(item)
            process.setdefault(stage, {})[m] = {"sequence": seq}
        route_params = [
            mods[m]["tasks"][(x if isinstance(x, str) else x["task"])].get("params", {})
            for st in process.values() for m, body in st.items() for x in body["sequence"]
        ]  # fmt: skip
        has_time = any("Time" in p for p in route_params)
        has_temp = any("Temp" in p for p in route_params)
        if has_time and rng.random() < bo_share:
            campaign: dict[str, Any] = {
                "kind": "bayesian",
                "batch": batch,
                "cycles": rng.randint(1, 3),
                "space": {"Time": [60, 1800, 60]},
                "loss": {"y": {"target": 1.0}},
            }
            if has_temp and zrng.random() < 0.3:
                campaign["space"]["Temp"] = [25, 95, 5]
        else:
            experiments: list[dict[str, Any]] = [{} for _ in range(batch)]
            if has_temp and zrng.random() < 0.4:  # a batch whose samples want different zones
                experiments = [{"Temp": zrng.choice([25, 60, 80])} for _ in range(batch)]
            campaign = {"kind": "manual", "experiments": experiments}
        job_list.append(
            {
                "id": str(j),
                "submit": round(t, 1),
                "script": {
                    "metadata": {
                        "name": f"job{j}",
                        "owner": f"user{rng.randint(0, 3)}",
                        # drawn either way: the rest of the day stays the same
                        "priority": rng.choice([0, 0, 0, 1]) * int(priorities),
                        "retries": rng.choice([0, 1]),
                    },
                    "campaign": campaign,
                    "process": process,
                },
            }
        )
        t += rng.expovariate(1.0 / mean_gap)
    data: dict[str, Any] = {
        "name": f"random-{seed}",
        "lab": {"modules": mods, "masks": masks},
        "jobs": job_list,
        "noise": {"sigma": noise_sigma, "seed": seed},
        "failures": {"probability": failure_probability, "seed": seed},
    }
    if events:
        ev_list: list[dict[str, Any]] = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(["ModuleDown", "CancelJob", "HoldJob", "SetPriority"])
            at = round(rng.uniform(0, max(t, 1.0)), 1)
            if kind == "ModuleDown":
                m = rng.choice(list(mods))
                ev_list.append({"type": "ModuleDown", "at": at, "module": m})
                ev_list.append({"type": "ModuleUp", "at": at + rng.randint(60, 3600), "module": m})
            elif kind == "HoldJob":
                jid = str(rng.randrange(jobs))
                ev_list.append({"type": "HoldJob", "at": at, "job_id": jid})
                ev_list.append(
                    {"type": "ResumeJob", "at": at + rng.randint(60, 3600), "job_id": jid}
                )
            elif kind == "SetPriority":
                ev_list.append(
                    {
                        "type": "SetPriority",
                        "at": at,
                        "job_id": str(rng.randrange(jobs)),
                        "priority": 3,
                    }
                )
            else:
                ev_list.append({"type": "CancelJob", "at": at, "job_id": str(rng.randrange(jobs))})
        data["events"] = ev_list
    return data


def random_scenario(seed: int, **kwargs: Any) -> Scenario:
    return parse_scenario(random_scenario_data(seed, **kwargs), f"random-{seed}")
