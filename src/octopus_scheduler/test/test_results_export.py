"""Results export from a real store: CSV and JSON, per job and per user."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from octopus_scheduler.service.results_export import export_job, export_user, write_export
from octopus_scheduler.service.store import Store, StoreError

SPECTRUM = [0.01, 0.52, 0.98, 0.47]


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "results.db") as s:
        s.add_job("J0001", owner="alice", name="silver", script="s", submitted_at=1.0)
        s.add_job("J0002", owner="bob", name="gold", script="s", submitted_at=2.0)
        s.add_job("J0003", owner="alice", name="empty", script="s", submitted_at=3.0)
        for i, agno3 in enumerate((100.0, 250.0)):
            s.record_experiment(
                "J0001",
                f"J0001/g0s{i}",
                recorded_at=10.0 + i,
                cycle=0,
                parameters={"AgNO3": agno3, "Rate": 20},
                measured={"UV-Vis.measure": {"spectrum": SPECTRUM, "lambda_max_nm": 500.0 + i}},
                derived={"loss": 0.1 * (i + 1)},
            )
        s.record_experiment(
            "J0002",
            "J0002/g0s0",
            recorded_at=20.0,
            parameters={"HAuCl4": 5.0},
            measured={"note": "ok"},
        )
        yield s


def test_job_csv_flattens_scalars_and_keeps_arrays(store: Store) -> None:
    rows = list(csv.DictReader(io.StringIO(export_job(store, "J0001", "csv"))))
    assert [r["experiment_id"] for r in rows] == ["J0001/g0s0", "J0001/g0s1"]
    first = rows[0]
    assert list(first) == [
        "job_id",
        "experiment_id",
        "cycle",
        "recorded_at",
        "param.AgNO3",
        "param.Rate",
        "measured.UV-Vis.measure.lambda_max_nm",
        "measured.UV-Vis.measure.spectrum",
        "derived.loss",
    ]
    assert float(first["param.AgNO3"]) == 100.0
    assert float(rows[1]["measured.UV-Vis.measure.lambda_max_nm"]) == 501.0
    assert json.loads(first["measured.UV-Vis.measure.spectrum"]) == SPECTRUM
    assert float(rows[1]["derived.loss"]) == pytest.approx(0.2)


def test_job_json_keeps_structure(store: Store) -> None:
    data = json.loads(export_job(store, "J0001", "json"))
    assert (data["job_id"], data["owner"], data["state"]) == ("J0001", "alice", "queued")
    assert len(data["experiments"]) == 2
    second = data["experiments"][1]
    assert second["parameters"] == {"AgNO3": 250.0, "Rate": 20}
    assert second["measured"]["UV-Vis.measure"]["spectrum"] == SPECTRUM
    assert second["cycle"] == 0


def test_user_export_covers_only_their_jobs(store: Store) -> None:
    rows = list(csv.DictReader(io.StringIO(export_user(store, "alice"))))
    assert {r["job_id"] for r in rows} == {"J0001"}
    data = json.loads(export_user(store, "bob", "json"))
    assert data["jobs"] == ["J0002"]
    assert [e["experiment_id"] for e in data["experiments"]] == ["J0002/g0s0"]
    assert export_user(store, "nobody") == "job_id,experiment_id,cycle,recorded_at\n"
    bob_rows = list(csv.DictReader(io.StringIO(export_user(store, "bob"))))
    assert bob_rows[0]["cycle"] == "" and bob_rows[0]["measured.note"] == "ok"


def test_write_export_to_file(store: Store, tmp_path: Path) -> None:
    path = write_export(export_job(store, "J0001", "json"), tmp_path / "J0001.json")
    assert json.loads(path.read_text())["job_id"] == "J0001"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_bad_requests_name_the_field(store: Store) -> None:
    with pytest.raises(ValueError, match="^format: must be one of csv, json, got 'xlsx'"):
        export_job(store, "J0001", "xlsx")
    with pytest.raises(StoreError, match="^job_id: no job J9"):
        export_job(store, "J9")
