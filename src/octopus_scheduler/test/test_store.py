"""The SQLite store: durability across a real process kill, queries, schema, bad input."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from octopus_scheduler.core import decisions as dc
from octopus_scheduler.core import events as ev
from octopus_scheduler.core.jobscript import parse_job_script
from octopus_scheduler.core.lab import Lab
from octopus_scheduler.core.scheduler_core import SchedulerCore
from octopus_scheduler.service.store import SCHEMA_VERSION, Store, StoreError
from octopus_scheduler.twin.examples import synth_job

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "octopus.db") as s:
        yield s


def test_wal_mode_and_full_sync(store: Store) -> None:
    with sqlite3.connect(store.path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.schema_version == SCHEMA_VERSION


def test_acknowledged_events_survive_sigkill(tmp_path: Path) -> None:
    """A child appends events and prints each seq only after append_event returned; we kill it
    with SIGKILL mid-stream and must find every printed event in the reopened file."""
    db = tmp_path / "killed.db"
    child_code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(PACKAGE_ROOT)!r})
        from octopus_scheduler.service.store import Store
        store = Store({str(db)!r})
        i = 0
        while True:
            i += 1
            seq = store.append_event({{"type": "Tick", "time": float(i), "n": i}})
            print(seq, i, flush=True)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", child_code], stdout=subprocess.PIPE, text=True)
    acknowledged: dict[int, int] = {}
    try:
        assert child.stdout is not None
        for line in child.stdout:
            seq, n = map(int, line.split())
            acknowledged[seq] = n
            if len(acknowledged) >= 150:
                child.send_signal(signal.SIGKILL)  # mid-stream: it is appending right now
                break
        # lines the child printed before dying are acknowledgements too
        for line in child.stdout:
            seq, n = map(int, line.split())
            acknowledged[seq] = n
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    with Store(db) as reopened:
        seqs = reopened.event_seqs()
        events = {seq: ev for seq, ev in zip(seqs, reopened.load_events(), strict=True)}
    assert set(acknowledged) <= set(events)
    for seq, n in acknowledged.items():
        assert events[seq] == {"type": "Tick", "time": float(n), "n": n}
    # seqs are gap-free: nothing half-written or reordered
    assert seqs == list(range(1, len(seqs) + 1))


def test_mapping_key_order_survives(store: Store) -> None:
    """A job script's stages must come back in the written (not alphabetical) order."""
    process = {"Synthesis": {"B": 1, "A": 2}, "Characterization": {"Z": 1, "M": 2}}
    store.append_event({"type": "JobSubmitted", "spec": {"process": process}})
    store.record_experiment("J1", "E1", recorded_at=0.0, parameters={"z": 1, "a": 2})
    (loaded,) = store.load_events()
    assert list(loaded["spec"]["process"]) == ["Synthesis", "Characterization"]
    assert list(loaded["spec"]["process"]["Synthesis"]) == ["B", "A"]
    assert list(store.experiments("J1")[0].parameters) == ["z", "a"]


def test_events_in_order_after_reopen(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    sent = [
        {"type": "JobSubmitted", "job_id": "J0001", "spec": {"a": [1, 2]}, "time": 1.5},
        {"type": "StepFinished", "step_id": "s1", "results": None, "time": None},
    ]
    with Store(db) as s:
        assert [s.append_event(e) for e in sent] == [1, 2]
    with Store(db) as s:
        assert s.load_events() == sent
        assert s.load_events(after_seq=1) == sent[1:]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"time": 1.0}, "event.type"),
        ({"type": "Tick", "time": float("nan")}, "event"),
        ({"type": "Tick", "time": "soon"}, "event.time"),
        ({"type": "Tick", "obj": object()}, "event"),
    ],
)
def test_bad_event_is_refused_naming_the_field(store: Store, event: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        store.append_event(event)
    assert store.load_events() == []


def test_job_ids_are_durable_and_unique(tmp_path: Path) -> None:
    db = tmp_path / "ids.db"
    with Store(db) as s:
        first = [s.next_job_id() for _ in range(3)]
    with Store(db) as s:
        assert s.next_job_id() == "J0004"
    assert first == ["J0001", "J0002", "J0003"]


def test_job_ids_unique_across_threads(store: Store) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(25):
            job_id = store.next_job_id()
            with lock:
                ids.append(job_id)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == len(set(ids)) == 100


def test_jobs_queries_and_detail(store: Store) -> None:
    script = "metadata: {name: a, owner: alice}\n# comment kept verbatim\n"
    store.add_job("J0001", owner="alice", name="a", script=script, submitted_at=10.0)
    store.add_job("J0002", owner="bob", name="b", script="x", submitted_at=11.0, priority=5)
    store.add_job("J0003", owner="alice", name="c", script="y", submitted_at=12.0)
    store.set_job_state("J0003", "failed", ended_at=20.0, message="step s3 failed twice")

    assert [j.job_id for j in store.jobs(owner="alice")] == ["J0001", "J0003"]
    assert [j.job_id for j in store.jobs(state="queued")] == ["J0001", "J0002"]
    assert [j.job_id for j in store.jobs(owner="alice", state=["failed", "held"])] == ["J0003"]
    failed = store.job("J0003")
    assert failed is not None and (failed.state, failed.ended_at, failed.message) == (
        "failed",
        20.0,
        "step s3 failed twice",
    )
    assert store.job("J0001").script == script  # type: ignore[union-attr]

    store.step_started(
        "J0001.s1", job_id="J0001", module="UV-Vis", task="GetAbs", step="measure", started_at=13.0
    )
    store.step_ended("J0001.s1", state="failed", ended_at=14.0, outcome="lamp off")
    assert (
        store.step_started(
            "J0001.s1",
            job_id="J0001",
            module="UV-Vis",
            task="GetAbs",
            step="measure",
            started_at=15.0,
        )
        == 2
    )
    store.step_ended("J0001.s1", state="succeeded", ended_at=16.0, outcome="ok")
    store.record_experiment(
        "J0001",
        "E1",
        recorded_at=16.0,
        cycle=0,
        parameters={"AgNO3": 100.0},
        measured={"UV.measure": [0.1, 0.2]},
    )
    store.record_experiment("J0001", "E1", recorded_at=17.0, derived={"lambda_max": 512.0})

    detail = store.job_detail("J0001")
    assert [(s.attempt, s.state, s.outcome) for s in detail.steps] == [
        (1, "failed", "lamp off"),
        (2, "succeeded", "ok"),
    ]
    (exp,) = detail.experiments
    assert exp.parameters == {"AgNO3": 100.0}
    assert exp.measured == {"UV.measure": [0.1, 0.2]}
    assert exp.derived == {"lambda_max": 512.0}
    assert exp.cycle == 0
    assert [e.job_id for e in store.experiments(owner="bob")] == []
    assert [e.experiment_id for e in store.experiments(owner="alice")] == ["E1"]


def test_bad_job_input_names_the_field(store: Store) -> None:
    with pytest.raises(ValueError, match="^owner:"):
        store.add_job("J1", owner="", name="n", script="s", submitted_at=0.0)
    store.add_job("J1", owner="o", name="n", script="s", submitted_at=0.0)
    with pytest.raises(ValueError, match="^job_id: job J1 already exists"):
        store.add_job("J1", owner="o", name="n", script="s", submitted_at=0.0)
    with pytest.raises(ValueError, match="^state: unknown state 'done'"):
        store.set_job_state("J1", "done")
    with pytest.raises(StoreError, match="^job_id: no job J9"):
        store.set_job_state("J9", "failed")
    with pytest.raises(StoreError, match="^step_id:"):
        store.step_ended("nope", state="failed", ended_at=1.0)
    with pytest.raises(ValueError, match="^measured:"):
        store.record_experiment("J1", "E", recorded_at=0.0, measured={"x": float("inf")})


def test_transaction_is_atomic(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.add_job("J1", owner="o", name="n", script="s", submitted_at=0.0)
            store.append_event({"type": "JobSubmitted", "job_id": "J1"})
            raise RuntimeError("validation failed after the writes")
    assert store.jobs() == [] and store.load_events() == []
    with store.transaction():
        store.add_job("J1", owner="o", name="n", script="s", submitted_at=0.0)
        store.append_event({"type": "JobSubmitted", "job_id": "J1"})
    assert len(store.jobs()) == 1 and len(store.load_events()) == 1


def test_optimiser_state_round_trip(store: Store) -> None:
    assert store.load_optimiser_state("J1") is None
    store.save_optimiser_state("J1", 0, {"cycles": [1]}, saved_at=1.0)
    store.save_optimiser_state("J1", 1, {"cycles": [1, 2]}, saved_at=2.0)
    store.save_optimiser_state("J2", 0, b"\x00raw")  # saved_at defaults to now
    assert store.load_optimiser_state("J1") == (1, {"cycles": [1, 2]})
    assert store.load_optimiser_state("J2") == (0, b"\x00raw")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this scheduler"):
        Store(db)


def test_append_rate_is_usable(store: Store) -> None:
    """Each append is fsynced; a few hundred per second are plenty for a scheduler."""
    start = time.perf_counter()
    for i in range(100):
        store.append_event({"type": "Tick", "time": float(i)})
    per_append = (time.perf_counter() - start) / 100
    assert per_append < 0.05


def test_core_event_log_replays_from_the_store(tmp_path: Path, tiny_lab: Lab) -> None:
    """The contract with the core: persist ev.to_dict(event) before handle, reopen, replay."""
    db = tmp_path / "replay.db"
    clock = {"t": 0.0}
    core = SchedulerCore(tiny_lab, "fcfs", clock=lambda: clock["t"])
    running: dict[str, float] = {}
    with Store(db) as store:

        def persist_and_handle(event: ev.Event) -> None:
            stamped = replace(event, time=clock["t"])
            store.append_event(ev.to_dict(stamped))
            for decision in core.handle(stamped):
                if isinstance(decision, dc.StartStep):
                    running[decision.step_id] = decision.time + decision.expected_s

        for i in range(2):  # two stages: Synthesis then Characterization
            persist_and_handle(
                ev.JobSubmitted(f"J{i}", parse_job_script(synth_job(measure=True), tiny_lab))
            )
        for _ in range(3):
            step_id = min(running, key=lambda k: (running[k], k))
            clock["t"] = running.pop(step_id)
            persist_and_handle(ev.StepFinished(step_id))

    with Store(db) as reopened:
        events = [ev.from_dict(d, tiny_lab) for d in reopened.load_events()]
    copy = SchedulerCore.replay(tiny_lab, "fcfs", events, clock=lambda: clock["t"])
    assert [(j.job_id, j.state) for j in copy.jobs()] == [(j.job_id, j.state) for j in core.jobs()]
    assert copy.devices() == core.devices()
    assert {s.step_id for s in copy.running_steps()} == {s.step_id for s in core.running_steps()}
