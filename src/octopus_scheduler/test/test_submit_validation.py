"""Submit-time validation against the live lab's module descriptions (issue 12, part 1), and a
Bayesian campaign that learns: ROS-free, the real LabService, store, CampaignDriver and
BayesianCampaign (scikit-optimize); module answers are given by the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from octopus_modules.description import DescriptionError, load_builtin_description
from octopus_modules.description import parse_description_text as parse_description
from octopus_modules.lab_clock import VirtualClock as Clock
from octopus_scheduler.core.errors import SpecError
from octopus_scheduler.core.jobscript import parse_job_script
from octopus_scheduler.service.campaign import BayesianCampaign
from octopus_scheduler.service.lab_from_modules import lab_from_modules
from octopus_scheduler.service.lab_service import LabService
from octopus_scheduler.service.store import Store
from octopus_scheduler.twin.scenario import load_scenario

DEMO = ("batch_synthesis", "uv_vis", "solid_state", "electrochemical_rde")
ROUTE = """
process:
  Synthesis:
    BatchSynthesis:
      sequence:
        - PrepareContainer
        - {task: AddSolution, params: {Solution: AgNO3}}
        - Mix
        - {task: React, params: {Time: 20 min}}
        - {task: MoveContainer, params: {Target: UV-Vis}}
  Characterization:
    UV-Vis: {sequence: [PrepareCuvette, GetAbs, StoreCuvette]}
"""


def bo(loss: str = "lambda_max_nm", space: str = "{range: [100, 1000, 50], unit: uL}") -> str:
    return f"""
metadata: {{name: colour, owner: carol}}
campaign:
  kind: bayesian
  batch: 3
  cycles: 2
  space: {{AddSolution.Volume: {space}}}
  loss: {{{loss}: {{target: 550, weight: 1}}}}
{ROUTE}"""


@pytest.fixture(scope="module")
def lab():
    return lab_from_modules([load_builtin_description(m) for m in DEMO])


def error(text: str, lab) -> str:
    with pytest.raises(SpecError) as caught:
        parse_job_script(text, lab)
    return str(caught.value)


def test_a_loss_key_no_step_reports_is_refused_naming_what_the_route_reports(lab) -> None:
    message = error(bo("lambda_max"), lab)
    assert message.startswith("campaign.loss.lambda_max: no step of this job reports")
    assert "lambda_max_nm" in message and "fwhm_nm" in message
    assert parse_job_script(bo("lambda_max_nm"), lab).campaign.loss


def test_a_loss_key_of_a_module_not_on_the_route_is_refused(lab) -> None:
    route_without_uv = bo().split("  Characterization:")[0]
    message = error(route_without_uv, lab)
    assert message.startswith("campaign.loss.lambda_max_nm: no step of this job reports")
    assert "dispensed_ul" in message and "lambda_max_nm (" not in message


def test_a_lab_whose_modules_declare_no_reports_is_not_checked() -> None:
    """The Fig. 8 twin's lab (scenario model) declares nothing: any key may be measured."""
    twin = load_scenario("fig8-platform-day").lab
    text = """
metadata: {name: twin, owner: carol}
campaign:
  kind: bayesian
  batch: 2
  cycles: 2
  space: {AddSolution.Volume: [100, 1000, 50]}
  loss: {anything: {target: 1}}
process:
  Synthesis: {BatchSynthesis: {sequence: [PrepareContainer, AddSolution, Mix, React]}}
"""
    assert parse_job_script(text, twin).campaign.loss == {
        "anything": {"target": 1.0, "weight": 1.0}
    }


def test_reports_are_declared_per_task_and_checked_on_load() -> None:
    uv = load_builtin_description("uv_vis")
    assert uv.task("GetAbs").reports == (
        "reference_counts",
        "lambda_max_nm",
        "fwhm_nm",
        "intensity",
    )
    assert uv.task("StoreCuvette").reports == ()
    broken = uv.to_yaml().replace("reports: []", "reports: [not a name]", 1)
    with pytest.raises(DescriptionError, match=r"tasks\.PrepareCuvette\.reports\[0\]"):
        parse_description(broken)


def test_campaign_values_are_checked_for_range_type_and_unit(lab) -> None:
    # BO bounds at and past the device's limits (Volume 1..5000 uL)
    assert parse_job_script(bo(space="{range: [1, 5000, 1], unit: uL}"), lab)
    assert error(bo(space="{range: [0.5, 500, 1], unit: uL}"), lab).startswith(
        "campaign.space.AddSolution.Volume[0]: below the minimum 1"
    )
    assert error(bo(space="{range: [1, 5.1, 1], unit: mL}"), lab).startswith(
        "campaign.space.AddSolution.Volume[1]: above the maximum 5000"
    )
    assert "wrong unit 'min'" in error(bo(space="{range: [1, 5, 1], unit: min}"), lab)
    sweep = """
metadata: {name: cv, owner: dave}
campaign: {kind: sweep, grid: {MeasureCV.Cycles: [1, 2.5], ScanRate: [20 mV/s, 0.05 V/s]}}
process:
  Evaluation:
    ElectroChemicalRDE:
      sequence: [PrepareInk, Deposit, Dry, {task: MeasureCV, params: {StartPotential: -200 mV}}]
"""
    assert error(sweep, lab) == "campaign.grid.MeasureCV.Cycles: expected an integer, got 2.5"
    spec = parse_job_script(sweep.replace("2.5", "3"), lab)
    rates = sorted({e["ScanRate"] for e in spec.campaign.experiments})
    assert rates == [20.0, 50.0]  # units the modules declare (mV/s, V, ms, kN, degC/min) work
    grid_past_limit = sweep.replace("[1, 2.5]", "[1, 101]")
    assert error(grid_past_limit, lab).startswith(
        "campaign.grid.MeasureCV.Cycles: above the maximum 100"
    )
    integer_space = bo(space="[1, 9, 0.5]").replace("AddSolution.Volume", "MeasureCV.Cycles")
    integer_space = integer_space.replace(ROUTE, sweep.split("process:")[1].join(["process:", ""]))
    assert error(integer_space.replace("lambda_max_nm", "onset_potential_v"), lab) == (
        "campaign.space.MeasureCV.Cycles[2]: Cycles takes an integer: the step must be whole"
    )


def test_a_required_parameter_missing_names_the_task_and_the_choices(lab) -> None:
    no_solution = bo().replace("{task: AddSolution, params: {Solution: AgNO3}}", "AddSolution")
    message = error(no_solution, lab)
    assert message.startswith("process.Synthesis.BatchSynthesis.sequence[1]: task AddSolution")
    assert "'Solution' (Citrate or H2O2 or NaBH4 or AgNO3)" in message


def test_a_proposal_never_repeats_a_point_already_proposed_even_when_nothing_was_learned():
    """The defect: nothing measured for the loss -> skopt told nothing -> cycle 1 repeated
    cycle 0's points. Now every new cycle goes to unexplored points until the grid is used up."""
    campaign = BayesianCampaign(
        {"V": [100, 1000, 50]}, {"lambda_max_nm": {"target": 550}}, batch=6, random_state=1
    )
    seen: list[float] = []
    for cycle in range(3):
        proposals = [p["V"] for p in campaign.propose(cycle, 6)]
        assert not set(proposals) & set(seen) and len(set(proposals)) == 6
        seen += proposals
        campaign.record(cycle, [({"V": v}, None) for v in proposals])
    # 19 grid points, 18 proposed: the last cycle may repeat only after the grid is used up
    last = [p["V"] for p in campaign.propose(3, 6)]
    assert len(set(last) - set(seen)) == 1
    again = BayesianCampaign.restore(campaign.state())  # a restart proposes the same
    assert again.propose(3, 6) == campaign.propose(3, 6)


def peak_nm(volume_ul: float) -> float:
    """The synthetic lab's response: the peak moves 0.25 nm per uL; 550 nm at 600 uL."""
    return 400.0 + 0.25 * volume_ul


def test_a_bayesian_campaign_learns_cycle_by_cycle_on_the_live_path(tmp_path: Path) -> None:
    """Submitted to the real LabService; every module goal answered in order, GetAbs with the
    synthetic peak of the volume its sample was dosed with. Cycle 1 differs from cycle 0, no
    point is measured twice, and within 5 cycles the best sample is within 30 uL of the optimum
    (600 uL) and better than the initial design's best."""
    clock = Clock()
    service = LabService(
        [load_builtin_description(m) for m in DEMO], Store(tmp_path / "db.sqlite"), clock=clock
    )
    text = bo(space="{range: [100, 1000, 10], unit: uL}").replace("cycles: 2", "cycles: 5")
    submission, outbox = service.submit(text, "carol")
    assert submission.accepted, submission.error
    volume: dict[str, float] = {}
    pending, answered = list(outbox.goals), 0
    while pending:
        goal = pending.pop(0)
        clock.advance(goal.expected_s)
        measured = {}
        if goal.task == "AddSolution":
            volume.update({s: goal.parameters["Volume"] for s in goal.samples})
        if goal.task == "GetAbs" and goal.step_index == 2:
            measured = {
                f"{s}/UV_Spectrometer.measure": {"lambda_max_nm": peak_nm(volume[s])}
                for s in goal.samples
            }
        pending += service.step_finished(goal.step_id, measured).goals
        answered += 1
        assert answered < 2_000
    assert service.job(submission.job_id).state == "succeeded"
    state = service.store.load_optimiser_state(submission.job_id)[1]
    cycles = [[p["AddSolution.Volume"] for p in op["proposals"]] for op in state["log"]
              if op["op"] == "ask"]  # fmt: skip
    assert len(cycles) == 5 and cycles[1] != cycles[0]
    flat = [v for cycle in cycles for v in cycle]
    assert len(flat) == len(set(flat)), f"a point was measured twice: {cycles}"
    best_initial = min(abs(v - 600) for v in cycles[0])
    best = min(abs(v - 600) for v in flat)
    assert best <= 30 and best < best_initial, cycles
    # the loss of every told experiment is kept as its derived property
    derived = [e.derived for e in service.store.experiments(submission.job_id) if e.derived]
    assert len(derived) == 4 * 3 and all("loss" in d for d in derived)
