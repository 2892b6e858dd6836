"""The scheduler's durable store: one SQLite file in WAL mode.

Everything the scheduler acknowledges (a job id, an event, a step outcome, a result, an optimiser
checkpoint) is committed here *before* the method returns, so the caller may acknowledge it.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``. WAL alone already survives a killed
process (the commit is in the OS page cache); FULL also fsyncs the WAL on every commit, so an
acknowledged job survives a power cut or kernel panic of the lab PC too. The price is one fsync
per commit (about a millisecond or two on an SSD), negligible at scheduler event rates.

Threads: one connection shared by all threads and serialised by a re-entrant lock, which is
enough for one scheduler node (all writes are short). Use :meth:`Store.transaction` to group
several writes atomically (e.g. the job row and its ``JobSubmitted`` event).

The schema is versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` upgrades older files.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_V1 = """
-- Settings kept with the event log (lab description, policy): replay needs them.
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- Durable counters (job ids): a value is never handed out twice, even across a crash.
CREATE TABLE sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    name         TEXT NOT NULL,
    priority     INTEGER NOT NULL DEFAULT 0,
    script       TEXT NOT NULL,             -- the job script exactly as submitted
    submitted_at REAL NOT NULL,
    state        TEXT NOT NULL,
    ended_at     REAL,
    message      TEXT NOT NULL DEFAULT ''   -- final message (why it failed, who cancelled)
);
CREATE INDEX jobs_by_owner ON jobs (owner, state);
CREATE INDEX jobs_by_state ON jobs (state);

-- The core's event log: append-only, replayed in seq order on restart.
CREATE TABLE events (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL,
    body TEXT NOT NULL
);

-- One row per attempt of a step (a retried step gets attempt 2, 3, ...).
CREATE TABLE steps (
    step_id    TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    job_id     TEXT NOT NULL,
    module     TEXT NOT NULL,
    task       TEXT NOT NULL,
    step       TEXT NOT NULL DEFAULT '',
    started_at REAL NOT NULL,
    ended_at   REAL,
    state      TEXT NOT NULL,               -- running | succeeded | failed | cancelled | lost
    outcome    TEXT NOT NULL DEFAULT '',    -- result summary or error text
    PRIMARY KEY (step_id, attempt)
);
CREATE INDEX steps_by_job ON steps (job_id);

CREATE TABLE experiments (
    job_id        TEXT NOT NULL,
    experiment_id TEXT NOT NULL,
    cycle         INTEGER,
    parameters    TEXT NOT NULL DEFAULT '{}',
    measured      TEXT NOT NULL DEFAULT '{}',
    derived       TEXT NOT NULL DEFAULT '{}',
    recorded_at   REAL NOT NULL,
    PRIMARY KEY (job_id, experiment_id)
);

-- Optimiser checkpoints of a campaign, one per cycle; the newest is the one to restore.
CREATE TABLE optimiser_state (
    job_id   TEXT NOT NULL,
    cycle    INTEGER NOT NULL,
    encoding TEXT NOT NULL,                 -- 'json' or 'bytes'
    state    BLOB NOT NULL,
    saved_at REAL NOT NULL,
    PRIMARY KEY (job_id, cycle)
);
"""

#: index i holds the script that takes a file from version i to version i + 1
MIGRATIONS: tuple[str, ...] = (SCHEMA_V1,)
SCHEMA_VERSION = len(MIGRATIONS)

JOB_STATES = ("queued", "running", "held", "succeeded", "failed", "cancelled")
STEP_STATES = ("running", "succeeded", "failed", "cancelled", "lost")


class StoreError(RuntimeError):
    """The database file cannot be used (newer schema, corrupt, missing job)."""


class StoreClosed(StoreError):
    """Used after :meth:`Store.close`: the scheduler is shutting down."""


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    owner: str
    name: str
    priority: int
    script: str
    submitted_at: float
    state: str
    ended_at: float | None
    message: str


@dataclass(frozen=True)
class StepRecord:
    step_id: str
    attempt: int
    job_id: str
    module: str
    task: str
    step: str
    started_at: float
    ended_at: float | None
    state: str
    outcome: str


@dataclass(frozen=True)
class ExperimentRecord:
    job_id: str
    experiment_id: str
    cycle: int | None
    parameters: dict[str, Any]
    measured: dict[str, Any]
    derived: dict[str, Any]
    recorded_at: float


@dataclass(frozen=True)
class JobDetail:
    job: JobRecord
    steps: list[StepRecord] = field(default_factory=list)
    experiments: list[ExperimentRecord] = field(default_factory=list)


def _json(value: Any, field_name: str) -> str:
    """Strict JSON (no NaN/Infinity, which other readers reject); the error names the field.

    Key order is kept: a job script's stages and modules are read in their written order."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field_name}: not JSON-serialisable ({exc})") from None


def _mapping(value: Any, field_name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{field_name}: expected a mapping, got {type(value).__name__}")
    return value


class Store:
    """The scheduler's SQLite database (see the module docstring for the guarantees)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so each write commits exactly
        # when we say (sqlite3's implicit transactions would defer it).
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._lock = threading.RLock()
        self._closed = False
        self._depth = 0  # nesting of transaction() on the owning thread
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode!r})")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._migrate()

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close after the write in progress; later uses raise :class:`StoreClosed`."""
        with self._lock:
            self._closed = True
            self._conn.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed(f"{self.path}: closed (the scheduler is shutting down)")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        with self._lock:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: schema version {version} is newer than this scheduler "
                    f"({SCHEMA_VERSION}); upgrade the scheduler"
                )
            for target in range(version, SCHEMA_VERSION):
                with self.transaction():
                    for statement in _statements(MIGRATIONS[target]):
                        self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version={target + 1}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes atomically; nested uses join the outer transaction.

        Committed (and fsynced) when the outermost block exits; rolled back on an exception.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._check_open()
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self._conn.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            self._check_open()
            return self._conn.execute(sql, args).fetchall()

    # -- meta and sequences ------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def next_value(self, name: str) -> int:
        """The next value of a durable counter (1, 2, ...), committed before it is returned."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO sequences (name, value) VALUES (?, 1) "
                "ON CONFLICT (name) DO UPDATE SET value = value + 1",
                (name,),
            )
            return int(
                self._conn.execute(
                    "SELECT value FROM sequences WHERE name = ?", (name,)
                ).fetchone()[0]
            )

    def next_job_id(self, prefix: str = "J", width: int = 4) -> str:
        """A new job id, ``J0001``, ``J0002``, ... (wider when the counter outgrows ``width``)."""
        return f"{prefix}{self.next_value('job_id'):0{width}d}"

    # -- events ------------------------------------------------------------------------------

    def append_event(self, event: Mapping[str, Any]) -> int:
        """Append one event (``ev.to_dict`` form) and return its seq once it is committed."""
        body = _json(dict(_mapping(event, "event")), "event")
        if not isinstance(event.get("type"), str):
            raise ValueError("event.type: required, the event class name")
        stamp = event.get("time")
        if stamp is not None and (not isinstance(stamp, int | float) or not math.isfinite(stamp)):
            raise ValueError(f"event.time: expected a finite number or None, got {stamp!r}")
        with self.transaction():
            cursor = self._conn.execute(
                "INSERT INTO events (time, body) VALUES (?, ?)", (stamp, body)
            )
            return int(cursor.lastrowid or 0)

    def load_events(self, after_seq: int = 0) -> list[dict[str, Any]]:
        """Every event after ``after_seq``, in append order (for ``SchedulerCore.replay``)."""
        rows = self._query("SELECT body FROM events WHERE seq > ? ORDER BY seq", (after_seq,))
        return [json.loads(body) for (body,) in rows]

    def event_seqs(self) -> list[int]:
        return [seq for (seq,) in self._query("SELECT seq FROM events ORDER BY seq")]

    # -- jobs --------------------------------------------------------------------------------

    def add_job(
        self,
        job_id: str,
        *,
        owner: str,
        name: str,
        script: str,
        submitted_at: float,
        priority: int = 0,
        state: str = "queued",
    ) -> None:
        """Record an accepted job with its script verbatim."""
        for field_name, value in (("job_id", job_id), ("owner", owner), ("name", name)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{field_name}: required, a non-empty string")
        if not isinstance(script, str):
            raise ValueError("script: expected the job script text")
        _check_state(state, JOB_STATES, "state")
        with self.transaction():
            try:
                self._conn.execute(
                    "INSERT INTO jobs (id, owner, name, priority, script, submitted_at, state) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (job_id, owner, name, priority, script, submitted_at, state),
                )
            except sqlite3.IntegrityError:
                raise ValueError(f"job_id: job {job_id} already exists") from None

    def set_job_state(
        self, job_id: str, state: str, *, ended_at: float | None = None, message: str = ""
    ) -> None:
        _check_state(state, JOB_STATES, "state")
        with self.transaction():
            cursor = self._conn.execute(
                "UPDATE jobs SET state = ?, ended_at = COALESCE(?, ended_at), "
                "message = CASE WHEN ? = '' THEN message ELSE ? END WHERE id = ?",
                (state, ended_at, message, message, job_id),
            )
            if cursor.rowcount == 0:
                raise StoreError(f"job_id: no job {job_id}")

    def set_job_priority(self, job_id: str, priority: int) -> None:
        with self.transaction():
            self._conn.execute("UPDATE jobs SET priority = ? WHERE id = ?", (priority, job_id))

    def job(self, job_id: str) -> JobRecord | None:
        rows = self._query(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return JobRecord(*rows[0]) if rows else None

    def jobs(
        self, *, owner: str | None = None, state: str | Sequence[str] | None = None
    ) -> list[JobRecord]:
        """Jobs in submission order, optionally of one owner and/or in given state(s)."""
        where: list[str] = []
        args: list[Any] = []
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        if state is not None:
            states = [state] if isinstance(state, str) else list(state)
            for s in states:
                _check_state(s, JOB_STATES, "state")
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args.extend(states)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._query(
            f"SELECT {_JOB_COLUMNS} FROM jobs{clause} ORDER BY submitted_at, id", args
        )
        return [JobRecord(*row) for row in rows]

    def job_detail(self, job_id: str) -> JobDetail:
        job = self.job(job_id)
        if job is None:
            raise StoreError(f"job_id: no job {job_id}")
        return JobDetail(job, self.steps(job_id), self.experiments(job_id))

    # -- steps -------------------------------------------------------------------------------

    def step_started(
        self,
        step_id: str,
        *,
        job_id: str,
        module: str,
        task: str,
        started_at: float,
        step: str = "",
    ) -> int:
        """Record a new attempt of a step as running; returns the attempt number (1, 2, ...)."""
        with self.transaction():
            (last,) = self._conn.execute(
                "SELECT COALESCE(MAX(attempt), 0) FROM steps WHERE step_id = ?", (step_id,)
            ).fetchone()
            attempt = int(last) + 1
            self._conn.execute(
                "INSERT INTO steps (step_id, attempt, job_id, module, task, step, started_at, "
                "state) VALUES (?, ?, ?, ?, ?, ?, ?, 'running')",
                (step_id, attempt, job_id, module, task, step, started_at),
            )
            return attempt

    def step_ended(self, step_id: str, *, state: str, ended_at: float, outcome: str = "") -> None:
        """Close the latest attempt of a step with its final state and outcome (or error)."""
        _check_state(state, STEP_STATES[1:], "state")
        with self.transaction():
            cursor = self._conn.execute(
                "UPDATE steps SET state = ?, ended_at = ?, outcome = ? WHERE step_id = ? AND "
                "attempt = (SELECT MAX(attempt) FROM steps WHERE step_id = ?)",
                (state, ended_at, outcome, step_id, step_id),
            )
            if cursor.rowcount == 0:
                raise StoreError(f"step_id: no started step {step_id}")

    def steps(
        self,
        job_id: str | None = None,
        *,
        state: str | None = None,
        ended_since: float | None = None,
    ) -> list[StepRecord]:
        """Steps (of a job, in a state, running or ended at ``ended_since`` or later), in the
        order they started."""
        where: list[str] = []
        args: list[Any] = []
        if job_id is not None:
            where.append("job_id = ?")
            args.append(job_id)
        if state is not None:
            where.append("state = ?")
            args.append(state)
        if ended_since is not None:
            where.append("(ended_at IS NULL OR ended_at >= ?)")
            args.append(ended_since)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._query(
            f"SELECT {_STEP_COLUMNS} FROM steps{clause} ORDER BY started_at, step_id, attempt", args
        )
        return [StepRecord(*row) for row in rows]

    # -- experiments -------------------------------------------------------------------------

    def has_experiment(self, job_id: str, experiment_id: str) -> bool:
        """Whether the experiment is recorded (a primary-key lookup, nothing decoded)."""
        rows = self._query(
            "SELECT 1 FROM experiments WHERE job_id = ? AND experiment_id = ?",
            (job_id, experiment_id),
        )
        return bool(rows)

    def record_experiment(
        self,
        job_id: str,
        experiment_id: str,
        *,
        recorded_at: float,
        cycle: int | None = None,
        parameters: Mapping[str, Any] | None = None,
        measured: Mapping[str, Any] | None = None,
        derived: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert or update an experiment. ``measured``/``derived`` are merged key by key into
        what is stored, so each task of the route can add its data as it finishes; fields passed
        as None keep their stored value."""
        with self.transaction():
            row = self._conn.execute(
                "SELECT cycle, parameters, measured, derived FROM experiments "
                "WHERE job_id = ? AND experiment_id = ?",
                (job_id, experiment_id),
            ).fetchone()
            old_cycle, old_params, old_measured, old_derived = (
                (None, {}, {}, {})
                if row is None
                else (row[0], json.loads(row[1]), json.loads(row[2]), json.loads(row[3]))
            )
            new_params = (
                dict(_mapping(parameters, "parameters")) if parameters is not None else (old_params)
            )
            new_measured = {**old_measured, **_mapping(measured or {}, "measured")}
            new_derived = {**old_derived, **_mapping(derived or {}, "derived")}
            self._conn.execute(
                "INSERT INTO experiments (job_id, experiment_id, cycle, parameters, measured, "
                "derived, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (job_id, experiment_id) DO UPDATE SET cycle = excluded.cycle, "
                "parameters = excluded.parameters, measured = excluded.measured, "
                "derived = excluded.derived, recorded_at = excluded.recorded_at",
                (
                    job_id,
                    experiment_id,
                    cycle if cycle is not None else old_cycle,
                    _json(new_params, "parameters"),
                    _json(new_measured, "measured"),
                    _json(new_derived, "derived"),
                    recorded_at,
                ),
            )

    def experiments(
        self, job_id: str | None = None, *, owner: str | None = None
    ) -> list[ExperimentRecord]:
        """Experiments of one job, or of every job of ``owner``, in job then record order."""
        where, args = [], []
        if job_id is not None:
            where.append("e.job_id = ?")
            args.append(job_id)
        if owner is not None:
            where.append("j.owner = ?")
            args.append(owner)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._query(
            "SELECT e.job_id, e.experiment_id, e.cycle, e.parameters, e.measured, e.derived, "
            f"e.recorded_at FROM experiments e LEFT JOIN jobs j ON j.id = e.job_id{clause} "
            "ORDER BY j.submitted_at, e.job_id, e.recorded_at, e.experiment_id",
            args,
        )
        return [
            ExperimentRecord(
                r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), json.loads(r[5]), r[6]
            )
            for r in rows
        ]

    # -- optimiser checkpoints ---------------------------------------------------------------

    def save_optimiser_state(
        self,
        job_id: str,
        cycle: int,
        state: Mapping[str, Any] | bytes,
        *,
        saved_at: float | None = None,
    ) -> None:
        """Checkpoint a campaign's optimiser after ``cycle`` (replaces an earlier save of it).

        ``saved_at`` is informational (default: now on the wall clock)."""
        saved_at = time.time() if saved_at is None else saved_at
        if isinstance(state, bytes | bytearray):
            encoding, blob = "bytes", bytes(state)
        else:
            encoding, blob = "json", _json(dict(_mapping(state, "state")), "state").encode()
        with self.transaction():
            self._conn.execute(
                "INSERT INTO optimiser_state (job_id, cycle, encoding, state, saved_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (job_id, cycle) DO UPDATE SET "
                "encoding = excluded.encoding, state = excluded.state, "
                "saved_at = excluded.saved_at",
                (job_id, cycle, encoding, blob, saved_at),
            )

    def load_optimiser_state(self, job_id: str) -> tuple[int, dict[str, Any] | bytes] | None:
        """The newest checkpoint of a job as (cycle, state), or None if it has none."""
        rows = self._query(
            "SELECT cycle, encoding, state FROM optimiser_state WHERE job_id = ? "
            "ORDER BY cycle DESC LIMIT 1",
            (job_id,),
        )
        if not rows:
            return None
        cycle, encoding, blob = rows[0]
        return int(cycle), (json.loads(blob) if encoding == "json" else bytes(blob))


_JOB_COLUMNS = "id, owner, name, priority, script, submitted_at, state, ended_at, message"
_STEP_COLUMNS = "step_id, attempt, job_id, module, task, step, started_at, ended_at, state, outcome"


def _statements(script: str) -> Iterator[str]:
    """Split a SQL script into statements (executescript would COMMIT our transaction)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in pending.splitlines()
    ):
        raise StoreError(f"incomplete SQL statement in a migration: {pending.strip()[:60]}")


def _check_state(state: str, allowed: Sequence[str], field_name: str) -> None:
    if state not in allowed:
        raise ValueError(f"{field_name}: unknown state {state!r} (known: {', '.join(allowed)})")
