from __future__ import annotations

import copy

import pytest

from octopus_scheduler.core.errors import JobScriptError, LabError
from octopus_scheduler.core.jobscript import parse_job_script
from octopus_scheduler.core.lab import load_lab
from octopus_scheduler.twin.examples import synth_job, tiny_lab_data


def test_mask_is_module_default_plus_lab_additions(tiny_lab):
    assert tiny_lab.mask("Synth", "Prep") == {"ArmA"}
    assert tiny_lab.mask("Meas", "Read") == {"Spec", "ArmA"}  # shared arm added by the lab
    react = tiny_lab.task("Synth", "React").steps[0]
    assert tiny_lab.step_devices("Synth", "React", react) == frozenset()  # standby holds nothing


def test_duration_from_parameters(tiny_lab):
    react = tiny_lab.task("Synth", "React").steps[0]
    assert react.duration.expected(3, [{"Time": 60}, {"Time": 90}]) == 90  # longest in the batch
    prep = tiny_lab.task("Synth", "Prep").steps[0]
    assert prep.duration.expected(2, [{}]) == 20


@pytest.mark.parametrize(
    "mutate, field",
    [
        (
            lambda d: d["modules"]["Synth"]["tasks"]["Prep"].update(mask=["Nope"]),
            "lab.modules.Synth.tasks.Prep.mask",
        ),
        (
            lambda d: d["modules"]["Synth"]["slots"].update(stirrer=0),
            "lab.modules.Synth.slots.stirrer",
        ),
        (lambda d: d["masks"].update({"Meas.Reed": ["ArmA"]}), "lab.masks.Meas.Reed"),
        (
            lambda d: d["modules"]["Meas"]["tasks"]["Read"].update(per="each"),
            "lab.modules.Meas.tasks.Read.per",
        ),
    ],
)
def test_lab_errors_name_the_field(mutate, field):
    data = tiny_lab_data()
    mutate(data)
    with pytest.raises(LabError) as err:
        load_lab(data)
    assert err.value.field == field


def test_valid_job_parses_with_canonical_units(tiny_lab):
    spec = parse_job_script(synth_job(batch=2, react="2 min"), tiny_lab)
    assert [r.task for r in spec.route] == ["Prep", "Add", "React"]
    assert spec.route[2].params["Time"] == 120
    assert spec.route[1].params["Volume"] == 100
    assert spec.campaign.batch == 2


def _bad(job, mutate):
    job = copy.deepcopy(job)
    mutate(job)
    return job


@pytest.mark.parametrize(
    "mutate, field, words",
    [
        (
            lambda j: j["process"]["Synthesis"]["Synth"]["sequence"].__setitem__(1, "Reactt"),
            "process.Synthesis.Synth.sequence[1]",
            "unknown task 'Reactt'",
        ),
        (
            lambda j: j["process"]["Synthesis"]["Synth"]["fixedParams"].update(Volume="-5 uL"),
            "process.Synthesis.Synth.fixedParams.Volume",
            "negative",
        ),
        (
            lambda j: j["process"]["Synthesis"]["Synth"]["fixedParams"].update(Volume="5 s"),
            "process.Synthesis.Synth.fixedParams.Volume",
            "wrong unit",
        ),
        (
            lambda j: j["process"]["Synthesis"]["Synth"]["fixedParams"].update(Colour=3),
            "process.Synthesis.Synth.fixedParams.Colour",
            "unknown parameter",
        ),
        (lambda j: j["campaign"].update(batch=3), "campaign.batch", "never be placed"),
        (
            lambda j: j["campaign"]["experiments"].append({"Speed": 3}),
            "campaign.experiments[2].Speed",
            "unknown parameter",
        ),
        (lambda j: j["process"].update(Cooking={}), "process.Cooking", "unknown stage"),
        (lambda j: j["metadata"].pop("owner"), "metadata.owner", "required"),
        (lambda j: j["campaign"].update(kind="magic"), "campaign.kind", "must be one of"),
    ],
)
def test_job_script_errors_name_the_field(tiny_lab, mutate, field, words):
    with pytest.raises(JobScriptError) as err:
        parse_job_script(_bad(synth_job(batch=2), mutate), tiny_lab)
    assert err.value.field == field
    assert words in err.value.message
    assert str(err.value).startswith(field + ": ")


def test_bayesian_campaign_validation(tiny_lab):
    job = synth_job()
    job["campaign"] = {
        "kind": "bayesian",
        "batch": 2,
        "cycles": 3,
        "initial_sampling": "latin",
        "acquisition": {"function": "ei", "xi": 0.01},
        "space": {"Volume": {"range": [100, 900, 50], "unit": "uL"}},
        "loss": {"lambda_max": {"target": 573, "weight": 1.0}},
    }
    spec = parse_job_script(job, tiny_lab)
    assert spec.campaign.sequential and spec.campaign.group_sizes() == [2, 2, 2]
    assert spec.campaign.space["Volume"] == (100, 900, 50)
    bad = copy.deepcopy(job)
    bad["campaign"]["acquisition"] = {"function": "ei", "kappa": 2}
    with pytest.raises(JobScriptError, match="campaign.acquisition.kappa"):
        parse_job_script(bad, tiny_lab)
    bad = copy.deepcopy(job)
    bad["campaign"]["space"]["Volume"]["range"] = [900, 100, 50]
    with pytest.raises(JobScriptError, match="campaign.space.Volume"):
        parse_job_script(bad, tiny_lab)


def test_sweep_grid_expands_the_product(tiny_lab):
    job = synth_job()
    job["campaign"] = {"kind": "sweep", "grid": {"Volume": [100, 200], "Time": ["1 min", "2 min"]}}
    spec = parse_job_script(job, tiny_lab)
    assert len(spec.campaign.experiments) == 4
    assert spec.campaign.group_sizes() == [2, 2]  # capped by the 2 stirrers
    assert {e["Time"] for e in spec.campaign.experiments} == {60, 120}


def test_json_text_is_accepted(tiny_lab):
    import json

    spec = parse_job_script(json.dumps(synth_job()), tiny_lab)
    assert spec.metadata.owner == "alice"
