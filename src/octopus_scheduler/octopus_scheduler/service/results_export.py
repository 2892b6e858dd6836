"""Export experiment results (parameters, measured data, derived properties) as CSV or JSON.

* JSON keeps the data as stored: one object per experiment with ``parameters``, ``measured`` and
  ``derived`` mappings (arrays stay arrays).
* CSV has one row per experiment: ``job_id, experiment_id, cycle, recorded_at``, then one column
  per scalar, named by its path: ``param.<name>``, ``measured.<key>.<key>``, ``derived.<key>``.
  Nested mappings are flattened; lists (spectra, wavelengths) stay in one cell as JSON text, so
  a spreadsheet row is never thousands of columns wide and nothing is lost.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from octopus_scheduler.service.store import ExperimentRecord, Store, StoreError

FORMATS = ("csv", "json")
FIXED_COLUMNS = ("job_id", "experiment_id", "cycle", "recorded_at")
GROUPS = (("param", "parameters"), ("measured", "measured"), ("derived", "derived"))


def flatten(data: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    """``{"a": {"b": 1}, "s": [1, 2]}`` -> ``("<prefix>.a.b", 1), ("<prefix>.s", "[1, 2]")``."""
    for key, value in data.items():
        path = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, path)
        elif isinstance(value, list | tuple):
            yield path, json.dumps(list(value))
        else:
            yield path, value


def flat_row(record: ExperimentRecord) -> dict[str, Any]:
    row: dict[str, Any] = {
        "job_id": record.job_id,
        "experiment_id": record.experiment_id,
        "cycle": record.cycle,
        "recorded_at": record.recorded_at,
    }
    for prefix, attribute in GROUPS:
        row.update(flatten(getattr(record, attribute), prefix))
    return row


def to_csv(records: Sequence[ExperimentRecord]) -> str:
    rows = [flat_row(r) for r in records]
    # fixed columns first, then parameters, measured, derived, each sorted by name
    extra = {key for row in rows for key in row} - set(FIXED_COLUMNS)
    order = {prefix: i for i, (prefix, _) in enumerate(GROUPS)}
    columns = [*FIXED_COLUMNS, *sorted(extra, key=lambda c: (order[c.split(".", 1)[0]], c))]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def to_json(records: Sequence[ExperimentRecord], **header: Any) -> str:
    experiments = [
        {
            "job_id": r.job_id,
            "experiment_id": r.experiment_id,
            "cycle": r.cycle,
            "recorded_at": r.recorded_at,
            "parameters": r.parameters,
            "measured": r.measured,
            "derived": r.derived,
        }
        for r in records
    ]
    return json.dumps({**header, "experiments": experiments}, indent=2, sort_keys=False)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format: must be one of {', '.join(FORMATS)}, got {fmt!r}")


def export_job(store: Store, job_id: str, fmt: str = "csv") -> str:
    """One job's experiments; JSON also carries the job's name, owner and state."""
    _check_format(fmt)
    job = store.job(job_id)
    if job is None:
        raise StoreError(f"job_id: no job {job_id}")
    records = store.experiments(job_id)
    if fmt == "csv":
        return to_csv(records)
    return to_json(records, job_id=job.job_id, name=job.name, owner=job.owner, state=job.state)


def export_user(store: Store, owner: str, fmt: str = "csv") -> str:
    """Every experiment of every job of ``owner`` (empty when they have none)."""
    _check_format(fmt)
    records = store.experiments(owner=owner)
    if fmt == "csv":
        return to_csv(records)
    jobs = [j.job_id for j in store.jobs(owner=owner)]
    return to_json(records, owner=owner, jobs=jobs)


def write_export(text: str, path: str | Path) -> Path:
    """Write an export atomically (a reader never sees half a file)."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)
    return target
