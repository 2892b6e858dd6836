"""``octopus results ID [--csv|--json] [--out FILE]``: a job's experiments from GetJob.

JSON keeps the data as measured (arrays stay arrays); CSV has one row per experiment with one
column per scalar (``param.*``, ``measured.*``, ``derived.*``; arrays as JSON text in one cell),
the same layout as the scheduler's own results export.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from octopus_client.commands.jobs import connect
from octopus_client.commands.text import job_state, table

GROUPS = (("param", "parameters"), ("measured", "measured"), ("derived", "derived"))


def flatten(data: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}, "s": [1, 2]}`` -> ``[("<prefix>.a.b", 1), ("<prefix>.s", "[1, 2]")]``."""
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        path = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            out.extend(flatten(value, path))
        elif isinstance(value, list | tuple):
            out.append((path, json.dumps(list(value))))
        else:
            out.append((path, value))
    return out


def to_csv(job_id: str, experiments: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for e in experiments:
        row: dict[str, Any] = {"job_id": job_id, "experiment_id": e.get("experiment", "")}
        for prefix, key in GROUPS:
            row.update(flatten(e.get(key) or {}, prefix))
        rows.append(row)
    order = {prefix: i for i, (prefix, _) in enumerate(GROUPS)}
    extra = {k for row in rows for k in row} - {"job_id", "experiment_id"}
    columns = ["job_id", "experiment_id", *sorted(extra, key=lambda c: (order[c.split(".")[0]], c))]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def to_json(job: Any, experiments: Sequence[Mapping[str, Any]]) -> str:
    header = {"job_id": job.id, "name": job.name, "owner": job.owner, "state": job_state(job.state)}
    return json.dumps({**header, "experiments": list(experiments)}, indent=2) + "\n"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return f"[{len(value)} values]"
    return str(value)


def to_text(job: Any, experiments: Sequence[Mapping[str, Any]]) -> str:
    title = f"{job.id} {job.name} ({job.owner}, {job_state(job.state)})"
    if not experiments:
        return f"{title}\nno experiment results yet"
    rows = [
        [
            e.get("experiment", ""),
            ", ".join(f"{k}={_short(v)}" for k, v in (e.get("parameters") or {}).items()),
            ", ".join(f"{k}={_short(v)}" for k, v in (e.get("derived") or {}).items()) or "-",
        ]
        for e in experiments
    ]
    return f"{title}\n{table(('EXPERIMENT', 'PARAMETERS', 'DERIVED'), rows)}"


def results(args: argparse.Namespace) -> int:
    fmt = "csv" if args.csv else "json" if args.json else None
    if fmt is None and args.out:
        fmt = "csv" if str(args.out).lower().endswith(".csv") else "json"
    with connect(args) as client:
        response = client.get_job(args.job_id)
    experiments = json.loads(response.results_json or "[]")
    if fmt == "csv":
        text = to_csv(response.job.id, experiments)
    elif fmt == "json":
        text = to_json(response.job, experiments)
    else:
        text = to_text(response.job, experiments) + "\n"
    if args.out:
        target = Path(args.out)
        partial = target.with_name(f".{target.name}.partial")  # no reader sees half a file
        partial.write_text(text, encoding="utf-8")
        partial.replace(target)
        print(f"{len(experiments)} experiment(s) of {response.job.id} written to {target}")
    else:
        sys.stdout.write(text)
    return 0
