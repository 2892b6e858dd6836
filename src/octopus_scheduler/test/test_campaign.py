"""Bayesian optimisation on real scikit-optimize: mapping, batches, checkpoints, progress."""

from __future__ import annotations

import json
from typing import Any

import pytest

from octopus_scheduler.core import decisions as dc
from octopus_scheduler.core import events as ev
from octopus_scheduler.core.jobscript import parse_job_script
from octopus_scheduler.core.lab import Lab
from octopus_scheduler.core.scheduler_core import SchedulerCore
from octopus_scheduler.service.campaign import BayesianCampaign, make_axis, seed_for
from octopus_scheduler.twin.examples import synth_job

# three synthesis parameters on a lab-like grid, and a UV-Vis-like band that depends on them
SPACE = {"AgNO3": [0, 1000, 10], "NaBH4": [0, 1000, 10], "Rate": [1, 100, 1]}
TARGET = {"lambda_max": {"target": 550, "weight": 2}, "fwhm": {"target": 90, "weight": 1}}
# tests of the mechanics run a cheaper (but otherwise identical) optimiser; the test of
# optimisation quality uses skopt's defaults
CHEAP = {"acq_points": 1000, "gp_restarts": 0}


def band(p: dict[str, Any]) -> dict[str, float]:
    """A smooth synthetic spectrum model: the optimum is a valley around (300, 650, 40)."""
    x = (p["AgNO3"] - 300) / 1000
    y = (p["NaBH4"] - 650) / 1000
    z = (p["Rate"] - 40) / 100
    return {"lambda_max": 550 + 600 * x + 300 * y, "fwhm": 90 + 200 * z * z + 100 * x * x}


def run_cycles(campaign: BayesianCampaign, cycles: range) -> list[list[float]]:
    losses = []
    for cycle in cycles:
        proposals = campaign.propose(cycle, campaign.batch)
        losses.append(campaign.record(cycle, [(p, band(p)) for p in proposals]))
    return losses


def test_proposals_lie_on_the_step_grid() -> None:
    campaign = BayesianCampaign(SPACE, TARGET, batch=3, random_state=3, **CHEAP)
    for cycle in range(2):
        proposals = campaign.propose(cycle, 3)
        assert len(proposals) == 3
        for p in proposals:
            assert set(p) == set(SPACE)
            for name, (low, high, step) in SPACE.items():
                assert low <= p[name] <= high
                assert (p[name] - low) / step == pytest.approx(round((p[name] - low) / step))
        campaign.record(cycle, [(p, band(p)) for p in proposals])


def test_grid_with_fractional_step_gives_clean_values() -> None:
    axis = make_axis("Conc", [0.1, 0.5, 0.1])
    assert axis.points == 5
    assert [axis.value(i) for i in range(5)] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert axis.coordinate(0.3, "x") == 2


def test_real_and_categorical_dimensions() -> None:
    space = {"T": [20.0, 80.0], "Solvent": ["water", "ethanol", "dmso"], "N": {"choices": [1, 2]}}
    campaign = BayesianCampaign(space, {"y": {"target": 1}}, batch=3, random_state=0, **CHEAP)
    proposals = campaign.propose(0, 3)
    assert all(20.0 <= p["T"] <= 80.0 for p in proposals)
    assert {p["Solvent"] for p in proposals} <= {"water", "ethanol", "dmso"}
    assert {p["N"] for p in proposals} <= {1, 2}
    assert BayesianCampaign.restore(campaign.state()).space == campaign.space
    assert any(p["T"] != round(p["T"]) for p in proposals)  # continuous, not a grid


def test_latin_initial_sampling_is_stratified() -> None:
    """cycle 0 is the initial design: with latin sampling each of `batch` equal bins of every
    parameter holds exactly one point (what distinguishes it from random sampling)."""
    batch = 5
    campaign = BayesianCampaign(
        {"a": [0.0, 1.0], "b": [0.0, 1.0]},
        {"y": {"target": 1}},
        batch=batch,
        initial_sampling="latin",
        random_state=11,
        **CHEAP,
    )
    proposals = campaign.propose(0, batch)
    for name in ("a", "b"):
        bins = sorted(min(int(p[name] * batch), batch - 1) for p in proposals)
        assert bins == list(range(batch))


@pytest.mark.parametrize(
    ("acquisition", "acq_func", "kwargs"),
    [
        ({"function": "ucb", "kappa": 3.0}, "LCB", {"kappa": 3.0}),
        ({"function": "ei", "xi": 0.05}, "EI", {"xi": 0.05}),
        ({"function": "pi", "xi": 0.2}, "PI", {"xi": 0.2}),
        ({"function": "ucb"}, "LCB", {}),
    ],
)
def test_acquisition_maps_to_skopt(acquisition: dict, acq_func: str, kwargs: dict) -> None:
    campaign = BayesianCampaign(SPACE, TARGET, batch=2, acquisition=acquisition)
    assert campaign._optimizer.acq_func == acq_func
    assert campaign._optimizer.acq_func_kwargs == kwargs


@pytest.mark.parametrize(
    ("sampling", "generator"), [("latin", "Lhs"), ("grid", "Grid"), ("random", "NoneType")]
)
def test_initial_sampling_maps_to_skopt(sampling: str, generator: str) -> None:
    campaign = BayesianCampaign(SPACE, TARGET, batch=4, initial_sampling=sampling)
    assert type(campaign._optimizer._initial_point_generator).__name__ == generator
    assert campaign._optimizer._n_initial_points == 4  # cycle 0 = the initial design


def test_each_acquisition_runs_a_cycle() -> None:
    for acquisition in ({"function": "ei", "xi": 0.01}, {"function": "pi", "xi": 0.01}):
        campaign = BayesianCampaign(SPACE, TARGET, batch=2, acquisition=acquisition, **CHEAP)
        run_cycles(campaign, range(1))
        second = campaign.propose(1, 2)
        assert len(second) == 2 and second != campaign.propose(0, 2)


def test_restore_continues_exactly() -> None:
    original = BayesianCampaign(
        SPACE, TARGET, batch=3, acquisition={"function": "ei", "xi": 0.02}, random_state=7, **CHEAP
    )
    run_cycles(original, range(2))
    saved = json.loads(json.dumps(original.state()))  # what the store keeps
    restored = BayesianCampaign.restore(saved)
    assert restored.propose(2, 3) == original.propose(2, 3)
    assert restored.state() == original.state()


def test_restore_between_propose_and_record() -> None:
    original = BayesianCampaign(SPACE, TARGET, batch=2, random_state=5, **CHEAP)
    run_cycles(original, range(1))
    in_flight = original.propose(1, 2)
    restored = BayesianCampaign.restore(json.loads(json.dumps(original.state())))
    assert restored.propose(1, 2) == in_flight  # re-asking a cycle gives the same sets
    for campaign in (original, restored):
        campaign.record(1, [(p, band(p)) for p in in_flight])
    assert restored.propose(2, 2) == original.propose(2, 2)


def test_propose_is_idempotent_and_ordered() -> None:
    campaign = BayesianCampaign(SPACE, TARGET, batch=2, random_state=1, **CHEAP)
    first = campaign.propose(0, 2)
    assert campaign.propose(0, 2) == first
    with pytest.raises(ValueError, match="^count: cycle 0 was already proposed with 2"):
        campaign.propose(0, 3)
    campaign.record(0, [(p, band(p)) for p in first])
    campaign.propose(2, 2)
    with pytest.raises(ValueError, match="^cycle: 1 comes before"):
        campaign.propose(1, 2)


def test_failed_experiments_are_logged_not_told() -> None:
    campaign = BayesianCampaign(SPACE, TARGET, batch=3, random_state=2, **CHEAP)
    proposals = campaign.propose(0, 3)
    losses = campaign.record(0, [(proposals[0], band(proposals[0])), (proposals[1], None)])
    assert losses[1] is None and losses[0] is not None
    assert len(campaign._optimizer.yi) == 1
    best = campaign.best()
    assert best is not None and best[0] == proposals[0]


def test_bad_results_name_the_field() -> None:
    campaign = BayesianCampaign(SPACE, TARGET, batch=2, random_state=2, **CHEAP)
    p = campaign.propose(0, 2)[0]
    with pytest.raises(ValueError, match=r"^results\[0\]\.parameters\.AgNO3: 2000"):
        campaign.record(0, [({**p, "AgNO3": 2000}, band(p))])
    with pytest.raises(ValueError, match=r"^results\[0\]\.parameters\.Rate: missing"):
        campaign.record(0, [({"AgNO3": 10, "NaBH4": 10}, band(p))])
    with pytest.raises(ValueError, match=r"^campaign\.loss\.fwhm: property not in the results"):
        campaign.record(0, [(p, {"lambda_max": 500.0})])
    assert campaign._optimizer.yi == []  # nothing half-told


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch": 0}, r"^campaign\.batch:"),
        ({"batch": 2, "initial_sampling": "sobol"}, r"^campaign\.initial_sampling:"),
        (
            {"batch": 2, "acquisition": {"function": "gp_hedge"}},
            r"^campaign\.acquisition\.function",
        ),
        ({"batch": 2, "acquisition": {"function": "ei", "kappa": 1}}, r"acquisition\.kappa: not"),
        ({"batch": 2, "acquisition": {"function": "ucb", "kappa": -1}}, r"acquisition\.kappa"),
    ],
)
def test_bad_configuration_names_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BayesianCampaign(SPACE, TARGET, **kwargs)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([5, 1, 1], "min must be below max"),
        ([0, 1, -1], r"\[2\]: step must be positive"),
        ([0, 1, 5], r"\[2\]: step 5 leaves a single value"),
        ([1, 2, 3, 4], r"expected \[min, max, step\] or"),
        ([], "expected"),
        (["water"], "at least two choices"),
        (["water", "water"], "choices must be distinct"),
        ({"values": [1, 2]}, "a mapping must be"),
    ],
)
def test_bad_space_names_the_parameter(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^campaign\.space\.X.*{message}"):
        BayesianCampaign({"X": raw}, TARGET, batch=2)


def test_from_a_parsed_job_script(tiny_lab: Lab) -> None:
    job = synth_job()
    job["campaign"] = {
        "kind": "bayesian",
        "batch": 2,
        "cycles": 3,
        "initial_sampling": "random",
        "acquisition": {"function": "pi", "xi": 0.1},
        "space": {"Volume": [100, 900, 100]},
        "loss": {"peak": {"target": 1}},
    }
    spec = parse_job_script(job, tiny_lab)
    campaign = BayesianCampaign.from_spec(spec.campaign, random_state=seed_for("J0001"), **CHEAP)
    assert campaign._optimizer.acq_func == "PI"
    proposals = campaign.propose(0, 2)
    assert all(p["Volume"] in {100.0 * k for k in range(1, 10)} for p in proposals)
    again = BayesianCampaign.from_spec(spec.campaign, random_state=seed_for("J0001"), **CHEAP)
    assert again.propose(0, 2) == proposals  # the job id alone fixes the seed
    manual = parse_job_script(synth_job(batch=2), tiny_lab)
    with pytest.raises(ValueError, match="^campaign.kind: only a bayesian"):
        BayesianCampaign.from_spec(manual.campaign, random_state=0, **CHEAP)


def test_bayesian_optimisation_improves_on_the_initial_batch() -> None:
    """4 cycles of batch 4: the best loss found beats the best of the initial (latin) batch,
    on average over seeds; the BO cycles themselves find better points than cycle 0 did."""
    initial_best, final_best = [], []
    for seed in range(3):
        campaign = BayesianCampaign(SPACE, TARGET, batch=4, random_state=seed)
        losses = run_cycles(campaign, range(4))
        initial_best.append(min(losses[0]))
        final_best.append(min(min(c) for c in losses))
        assert min(min(c) for c in losses[1:]) < min(losses[0])
    mean_initial = sum(initial_best) / 3
    mean_final = sum(final_best) / 3
    assert mean_final < 0.6 * mean_initial


def test_drives_a_bayesian_job_through_the_core(tiny_lab: Lab) -> None:
    """NeedProposals -> propose, results of cycle k-1 told before cycle k, the job ends."""
    job = synth_job(react="10 s")
    job["campaign"] = {
        "kind": "bayesian",
        "batch": 2,
        "cycles": 3,
        "space": {"Volume": [100, 900, 100]},
        "loss": {"peak": {"target": 1.0}},
    }
    spec = parse_job_script(job, tiny_lab)
    clock = {"t": 0.0}
    core = SchedulerCore(tiny_lab, "fcfs", clock=lambda: clock["t"])
    campaign = BayesianCampaign.from_spec(spec.campaign, random_state=seed_for("bo"), **CHEAP)
    volumes_run: list[float] = []
    asked: dict[int, list[dict[str, Any]]] = {}
    running: dict[str, float] = {}
    decisions = core.handle(ev.JobSubmitted("bo", spec))
    while decisions or running:
        for d in decisions:
            if isinstance(d, dc.NeedProposals):
                if d.cycle > 0:  # the previous cycle has ended: tell it first
                    measured = [(p, {"peak": p["Volume"] / 400}) for p in asked[d.cycle - 1]]
                    campaign.record(d.cycle - 1, measured)
                asked[d.cycle] = campaign.propose(d.cycle, d.count)
                decisions.extend(
                    core.handle(ev.ProposalsReady("bo", d.cycle, tuple(asked[d.cycle])))
                )
            elif isinstance(d, dc.StartStep):
                running[d.step_id] = d.time + d.expected_s
                if d.task == "Add":
                    volumes_run.append(d.params["Volume"])
        decisions = []
        if running:
            step_id = min(running, key=lambda k: (running[k], k))
            clock["t"] = running.pop(step_id)
            decisions = core.handle(ev.StepFinished(step_id))
    assert core.job("bo").state == "succeeded"
    assert sorted(asked) == [0, 1, 2]
    assert sorted(volumes_run) == sorted(p["Volume"] for c in asked.values() for p in c)
    assert [op["op"] for op in campaign.state()["log"]] == ["ask", "tell", "ask", "tell", "ask"]
