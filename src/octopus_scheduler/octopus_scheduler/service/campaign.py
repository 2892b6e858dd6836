"""Server-side Bayesian optimisation of a campaign with scikit-optimize (ask/tell).

The core emits ``NeedProposals(job_id, cycle, count, space)``; the node answers with
``BayesianCampaign.propose(cycle, count)`` after telling the previous cycle's results with
``record(cycle, results)``. Manual lists and sweeps need no optimiser: the job script parser
already expands them into ``Campaign.experiments``.

Mapping of the job script (``jobscript.Campaign``) onto skopt:

* space ``name: [min, max, step]`` -> an ``Integer(0, n)`` grid index, ``n = floor((max - min) /
  step)``, value ``min + i * step``: the optimiser only proposes points of the grid and still
  sees their order (a ``Categorical`` would lose it); when ``max - min`` is not a multiple of
  the step the grid stops below ``max``. ``[min, max]`` (or step 0) -> ``Real``;
  ``{choices: [...]}`` or a list of names -> ``Categorical``.
* acquisition ``ucb`` (kappa) -> ``acq_func="LCB"`` (we minimise, LCB is UCB of the negated loss),
  ``ei``/``pi`` (xi) -> ``"EI"``/``"PI"``; parameters go to ``acq_func_kwargs``.
* initial sampling ``latin``/``grid``/``random`` -> ``initial_point_generator`` ``lhs``/``grid``/
  ``random`` with ``n_initial_points = batch``: cycle 0 is the initial design.
* a batch is ``ask(n_points=count, strategy="cl_min")`` (constant liar).

Checkpoints: :meth:`state` is a JSON-safe log of what was asked and told; :meth:`restore`
rebuilds the optimiser with the same seed and replays the log, so a restarted scheduler proposes
exactly what the original would have (skopt is deterministic for a given random_state and call
sequence). The log is robust to pickling differences between library versions.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from skopt import Optimizer
from skopt.space import Categorical, Dimension, Integer, Real
from skopt.utils import cook_estimator
from threadpoolctl import threadpool_limits

from octopus_scheduler.service.loss import Loss, make_loss

log = logging.getLogger(__name__)

STATE_VERSION = 1
ACQUISITIONS = {"ucb": "LCB", "ei": "EI", "pi": "PI"}
SAMPLINGS = {"latin": "lhs", "grid": "grid", "random": "random"}
BATCH_STRATEGY = "cl_min"
_GRID_LIMIT = 10_000_000  # grid indices beyond this are pointless; use a Real dimension


@dataclass(frozen=True)
class Axis:
    """One parameter of the space and how it maps to a skopt dimension."""

    name: str
    low: float | None = None
    high: float | None = None
    step: float | None = None  # None: continuous
    choices: tuple[Any, ...] = ()  # non-empty: categorical

    @property
    def points(self) -> int:
        assert self.low is not None and self.high is not None and self.step
        return math.floor((self.high - self.low) / self.step + 1e-9) + 1

    def dimension(self) -> Dimension:
        if self.choices:
            return Categorical(list(self.choices), name=self.name)
        assert self.low is not None and self.high is not None
        if self.step:
            return Integer(0, self.points - 1, name=self.name)
        return Real(self.low, self.high, name=self.name)

    def value(self, x: Any) -> Any:
        """skopt coordinate -> parameter value."""
        if self.choices:
            return x
        assert self.low is not None
        if self.step:
            return round(self.low + int(x) * self.step, 12)  # round away 0.1 + 0.2 noise
        return float(x)

    def coordinate(self, value: Any, field: str) -> Any:
        """Parameter value -> skopt coordinate; refuses values outside the space."""
        if self.choices:
            if value not in self.choices:
                raise ValueError(f"{field}: {value!r} is not one of {list(self.choices)}")
            return value
        assert self.low is not None and self.high is not None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{field}: expected a number, got {value!r}")
        if not self.low - 1e-9 <= value <= self.high + 1e-9:
            raise ValueError(f"{field}: {value!r} outside [{self.low:g}, {self.high:g}]")
        if self.step:
            index = round((value - self.low) / self.step)
            return min(max(index, 0), self.points - 1)
        return min(max(float(value), self.low), self.high)

    def to_json(self) -> Any:
        if self.choices:
            return {"choices": list(self.choices)}
        return [self.low, self.high] if self.step is None else [self.low, self.high, self.step]


def make_axis(name: str, raw: Any) -> Axis:
    """``[min, max, step]`` (a grid), ``[min, max]`` (continuous), or categorical choices:
    ``{choices: [...]}`` or a list holding any non-number (``[water, ethanol]``)."""
    field = f"campaign.space.{name}"
    if isinstance(raw, Mapping):
        if set(raw) != {"choices"}:
            raise ValueError(f"{field}: a mapping must be {{choices: [...]}}")
        return _choices(name, raw["choices"], f"{field}.choices")
    if isinstance(raw, tuple):
        raw = list(raw)
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{field}: expected [min, max, step], [min, max] or {{choices: [...]}}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw):
        return _choices(name, raw, field)
    if len(raw) not in (2, 3):
        raise ValueError(f"{field}: expected [min, max, step] or [min, max], got {raw!r}")
    low, high = float(raw[0]), float(raw[1])
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ValueError(f"{field}: min must be below max (got {raw[0]!r}, {raw[1]!r})")
    step = float(raw[2]) if len(raw) == 3 and raw[2] else None
    if step is not None and (not math.isfinite(step) or step < 0):
        raise ValueError(f"{field}[2]: step must be positive, got {raw[2]!r}")
    if step is not None and step > high - low:
        raise ValueError(f"{field}[2]: step {raw[2]!r} leaves a single value in the range")
    if step is not None and (high - low) / step + 1 > _GRID_LIMIT:
        step = None  # so fine a grid is continuous in practice
    return Axis(name, low, high, step)


def _choices(name: str, raw: Any, field: str) -> Axis:
    if not isinstance(raw, list) or len(raw) < 2:
        raise ValueError(f"{field}: expected a list of at least two choices")
    if len({json.dumps(v, sort_keys=True) for v in raw}) != len(raw):
        raise ValueError(f"{field}: choices must be distinct")
    return Axis(name, choices=tuple(raw))


def seed_for(job_id: str) -> int:
    """A stable per-job seed, so a campaign rebuilt from its job id alone proposes the same."""
    return zlib.crc32(job_id.encode()) & 0x7FFFFFFF


class BayesianCampaign:
    """The optimiser of one BO job: ``propose`` a cycle's parameter sets, ``record`` results."""

    def __init__(
        self,
        space: Mapping[str, Any],
        loss: Loss | Mapping[str, Any],
        *,
        batch: int,
        acquisition: Mapping[str, Any] | None = None,
        initial_sampling: str = "latin",
        random_state: int = 0,
        acq_points: int = 10_000,
        gp_restarts: int = 2,
    ) -> None:
        """``acq_points`` (random points the acquisition is evaluated on) and ``gp_restarts``
        (restarts of the GP hyper-parameter fit) are skopt's defaults: cheaper values trade
        proposal quality for speed (tests of the mechanics use them)."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"campaign.batch: expected an integer >= 1, got {batch!r}")
        if initial_sampling not in SAMPLINGS:
            raise ValueError(
                f"campaign.initial_sampling: must be one of {', '.join(SAMPLINGS)}, "
                f"got {initial_sampling!r}"
            )
        if not isinstance(space, Mapping) or not space:
            raise ValueError("campaign.space: needs at least one parameter")
        self.axes = tuple(make_axis(name, raw) for name, raw in space.items())
        self.loss = loss if isinstance(loss, Loss) else make_loss(loss)
        self.batch = batch
        self.acquisition = dict(acquisition or {"function": "ucb"})
        self.initial_sampling = initial_sampling
        self.random_state = int(random_state)
        self.acq_points = _positive_int(acq_points, "acq_points")
        self.gp_restarts = _positive_int(gp_restarts, "gp_restarts", low=0)
        dimensions = [axis.dimension() for axis in self.axes]
        # skopt's own GP ("GP"), only with our number of fit restarts
        estimator = cook_estimator(
            "GP",
            space=dimensions,
            random_state=self.random_state,
            n_restarts_optimizer=self.gp_restarts,
        )
        acq_func, acq_func_kwargs = _acquisition(self.acquisition)
        self._optimizer = Optimizer(
            dimensions,
            base_estimator=estimator,
            n_initial_points=batch,
            initial_point_generator=SAMPLINGS[initial_sampling],
            random_state=self.random_state,
            acq_func=acq_func,
            acq_func_kwargs=acq_func_kwargs,
            acq_optimizer_kwargs={"n_points": self.acq_points},
        )
        # the replayable log, in call order: {"op": "ask", cycle, count, proposals} and
        # {"op": "tell", cycle, results}; replaying it reproduces the optimiser exactly
        self._log: list[dict[str, Any]] = []

    @classmethod
    def from_spec(cls, campaign: Any, *, random_state: int, **options: int) -> BayesianCampaign:
        """From the parsed job script's ``jobscript.Campaign`` (kind ``bayesian``); ``options``
        are ``acq_points``/``gp_restarts``."""
        if getattr(campaign, "kind", None) != "bayesian":
            raise ValueError(
                f"campaign.kind: only a bayesian campaign has an optimiser, got "
                f"{getattr(campaign, 'kind', None)!r}"
            )
        return cls(
            {name: list(rng) for name, rng in campaign.space.items()},
            campaign.loss,
            batch=campaign.batch,
            acquisition=campaign.acquisition,
            initial_sampling=campaign.initial_sampling,
            random_state=random_state,
            **options,
        )

    # -- the loop ----------------------------------------------------------------------------

    def propose(self, cycle: int, count: int) -> list[dict[str, Any]]:
        """``count`` parameter sets for ``cycle``; asking again for a cycle returns the same
        sets (a restarted node may re-ask), so proposing never runs an experiment twice."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count: expected an integer >= 1, got {count!r}")
        asked = {op["cycle"]: op for op in self._log if op["op"] == "ask"}
        if cycle in asked:
            if asked[cycle]["count"] != count:
                raise ValueError(
                    f"count: cycle {cycle} was already proposed with {asked[cycle]['count']} sets"
                )
            return [dict(p) for p in asked[cycle]["proposals"]]
        later = sorted(c for c in asked if c > cycle)
        if later:
            raise ValueError(f"cycle: {cycle} comes before the already proposed cycle {later[0]}")
        proposals = self._ask(count)
        self._log.append({"op": "ask", "cycle": cycle, "count": count, "proposals": proposals})
        return [dict(p) for p in proposals]

    def record(
        self, cycle: int, results: Sequence[tuple[Mapping[str, Any], Mapping[str, Any] | None]]
    ) -> list[float | None]:
        """Tell the optimiser a cycle's results: ``(parameters, properties)`` per experiment.

        ``properties`` None marks a failed experiment: it is kept in the log but not told (the
        optimiser has nothing to learn from it). Returns the loss of each experiment.
        """
        entries: list[dict[str, Any]] = []
        for i, (params, props) in enumerate(results):
            self._coordinates(params, f"results[{i}].parameters")  # validate before telling
            loss = None if props is None else self.loss(props)
            entries.append(
                {"parameters": dict(params), "properties": _json_props(props), "loss": loss}
            )
        self._tell(entries)
        self._log.append({"op": "tell", "cycle": cycle, "results": entries})
        return [e["loss"] for e in entries]

    def _ask(self, count: int) -> list[dict[str, Any]]:
        """``count`` new parameter sets. A set that repeats one already proposed (measured, or
        in flight) or another of this batch is replaced by the unexplored grid point farthest
        from every explored one: on a discrete grid skopt's constant liar can land on a point
        twice, and a cycle must not spend samples on what the campaign already knows. Only
        when every grid point has been proposed may a point come again (logged). Deterministic
        in the log, so a restored campaign replays the same proposals."""
        with _quiet_and_single_threaded():
            xs = self._optimizer.ask(n_points=count, strategy=BATCH_STRATEGY)
        seen = {self._key(p) for op in self._log if op["op"] == "ask" for p in op["proposals"]}
        out: list[dict[str, Any]] = []
        for x in xs:
            params = self._params(x)
            if self._key(params) in seen:
                fresh = self._unexplored(seen)
                if fresh is None:
                    log.warning("campaign: every point of the space was proposed; repeating one")
                else:
                    log.info("campaign: %s was proposed before; %s instead", params, fresh)
                    params = fresh
            seen.add(self._key(params))
            out.append(params)
        return out

    def _key(self, params: Mapping[str, Any]) -> str:
        return json.dumps([params.get(axis.name) for axis in self.axes])

    def _unexplored(self, seen: set[str], candidates: int = 2_000) -> dict[str, Any] | None:
        """The candidate point not in ``seen`` farthest (normalised) from every seen point."""
        space = self._optimizer.space
        state = zlib.crc32(f"{self.random_state}/{len(seen)}".encode()) & 0x7FFFFFFF
        points = [self._params(x) for x in space.rvs(n_samples=candidates, random_state=state)]
        fresh = [p for p in points if self._key(p) not in seen]
        if not fresh:
            return None
        known = [json.loads(k) for k in seen]

        def distance(point: Mapping[str, Any]) -> float:
            values = [point[axis.name] for axis in self.axes]
            return min(
                (sum(_gap(axis, a, b) ** 2 for axis, a, b in zip(self.axes, values, k, strict=True))
                 for k in known),
                default=0.0,
            )  # fmt: skip

        return max(fresh, key=distance)

    def _tell(self, entries: Sequence[Mapping[str, Any]]) -> None:
        told = [e for e in entries if e["loss"] is not None]
        if told:
            xs = [self._coordinates(e["parameters"], "parameters") for e in told]
            with _quiet_and_single_threaded():
                self._optimizer.tell(xs, [float(e["loss"]) for e in told])

    # -- reading -----------------------------------------------------------------------------

    def results(self) -> list[dict[str, Any]]:
        """Every recorded experiment in order: cycle, parameters, properties, loss."""
        return [
            {"cycle": op["cycle"], **entry}
            for op in self._log
            if op["op"] == "tell"
            for entry in op["results"]
        ]

    def best(self) -> tuple[dict[str, Any], float] | None:
        """The recorded experiment with the lowest loss, or None before any result."""
        told = [r for r in self.results() if r["loss"] is not None]
        if not told:
            return None
        best = min(told, key=lambda r: r["loss"])
        return dict(best["parameters"]), float(best["loss"])

    @property
    def space(self) -> dict[str, Any]:
        return {axis.name: axis.to_json() for axis in self.axes}

    # -- checkpoints -------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """A JSON-safe checkpoint (configuration + the ask/tell log)."""
        return {
            "version": STATE_VERSION,
            "space": self.space,
            "loss": self.loss.to_dict(),
            "batch": self.batch,
            "acquisition": dict(self.acquisition),
            "initial_sampling": self.initial_sampling,
            "random_state": self.random_state,
            "acq_points": self.acq_points,
            "gp_restarts": self.gp_restarts,
            "log": copy.deepcopy(self._log),
        }

    @classmethod
    def restore(cls, state: Mapping[str, Any]) -> BayesianCampaign:
        """Rebuild a campaign from :meth:`state` by replaying its log in the original order."""
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
            version = state.get("version") if isinstance(state, Mapping) else None
            raise ValueError(f"state.version: unsupported checkpoint version {version!r}")
        loss_def = state["loss"]
        campaign = cls(
            state["space"],
            make_loss(loss_def["terms"], loss_def.get("function", "squared")),
            batch=state["batch"],
            acquisition=state["acquisition"],
            initial_sampling=state["initial_sampling"],
            random_state=state["random_state"],
            acq_points=state.get("acq_points", 10_000),
            gp_restarts=state.get("gp_restarts", 2),
        )
        for op in state["log"]:
            if op["op"] == "ask":
                if campaign._ask(op["count"]) != op["proposals"]:
                    # e.g. another skopt version: the logged proposals are what actually ran
                    log.warning(
                        "campaign replay: cycle %s proposals differ from the log", op["cycle"]
                    )
            else:
                campaign._tell(op["results"])
            campaign._log.append(copy.deepcopy(dict(op)))
        return campaign

    # -- mapping -----------------------------------------------------------------------------

    def _params(self, x: Sequence[Any]) -> dict[str, Any]:
        return {axis.name: _plain(axis.value(v)) for axis, v in zip(self.axes, x, strict=True)}

    def _coordinates(self, params: Mapping[str, Any], field: str) -> list[Any]:
        if not isinstance(params, Mapping):
            raise ValueError(f"{field}: expected a mapping of parameter -> value")
        missing = [a.name for a in self.axes if a.name not in params]
        if missing:
            raise ValueError(f"{field}.{missing[0]}: missing (the space has it)")
        return [axis.coordinate(params[axis.name], f"{field}.{axis.name}") for axis in self.axes]


@contextmanager
def _quiet_and_single_threaded() -> Iterator[None]:
    """One BLAS thread: the GP's tiny matrices gain nothing from threads, and on a busy PC
    the threads' spinning made a fit 5x slower. skopt warns (UserWarning) when a discrete grid
    forces a repeated point to be replaced by a random one: expected here, so logged instead."""
    with threadpool_limits(limits=1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        yield
    for warning in caught:
        log.debug("skopt: %s", warning.message)


def _gap(axis: Axis, a: Any, b: Any) -> float:
    """Distance of two values on one axis, as a share of its range (categories: 0 or 1)."""
    if axis.choices or not isinstance(a, int | float) or not isinstance(b, int | float):
        return float(a != b)
    assert axis.low is not None and axis.high is not None
    return (a - b) / (axis.high - axis.low)


def _positive_int(value: Any, field: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{field}: expected an integer >= {low}, got {value!r}")
    return value


def _acquisition(acquisition: Mapping[str, Any]) -> tuple[str, dict[str, float]]:
    fn = acquisition.get("function", "ucb")
    if fn not in ACQUISITIONS:
        raise ValueError(
            f"campaign.acquisition.function: must be one of {', '.join(ACQUISITIONS)}, got {fn!r}"
        )
    extra = set(acquisition) - {"function", "kappa" if fn == "ucb" else "xi"}
    if extra:
        raise ValueError(f"campaign.acquisition.{sorted(extra)[0]}: not a parameter of {fn}")
    kwargs: dict[str, Any] = {}
    for key in ("kappa", "xi"):
        if key in acquisition:
            value = acquisition[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"campaign.acquisition.{key}: expected a number >= 0")
            kwargs[key] = float(value)
    return ACQUISITIONS[fn], kwargs


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars (JSON, equality with stored proposals)."""
    return value.item() if hasattr(value, "item") else value


def _json_props(props: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if props is None:
        return None
    return {k: _plain(v) for k, v in props.items() if isinstance(_plain(v), int | float | str)}
