"""Answers the core's NeedProposals for a live Bayesian-optimisation job.

Before cycle k is proposed, the measured properties of cycle k-1 (recorded by the store as the
experiments' results) are told to the job's optimiser; the optimiser's checkpoint is saved in the
store after every ask, so a restarted scheduler continues the campaign where it was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from octopus_scheduler.core.decisions import NeedProposals
from octopus_scheduler.core.scheduler_core import SchedulerCore
from octopus_scheduler.service.campaign import BayesianCampaign, seed_for
from octopus_scheduler.service.store import Store

log = logging.getLogger(__name__)


class CampaignDriver:
    """One optimiser per BO job, kept in memory; rebuilt from its checkpoint after a restart."""

    def __init__(self, store: Store, service: Any) -> None:
        self.store = store
        self.service = service  # gives the core (replaced on restart) and its jobs
        self._campaigns: dict[str, BayesianCampaign] = {}

    def propose(self, need: NeedProposals) -> list[dict[str, Any]]:
        campaign = self._campaigns.get(need.job_id) or self._load(need.job_id)
        self._campaigns[need.job_id] = campaign
        told = {op["cycle"] for op in campaign.state()["log"] if op["op"] == "tell"}
        previous = need.cycle - 1
        if previous >= 0 and previous not in told:
            results = cycle_results(self.store, need.job_id, previous, campaign)
            losses = campaign.record(previous, results)
            if all(loss is None for loss in losses):
                wanted = ", ".join(campaign.loss.properties)
                log.warning(
                    "%s cycle %d: no experiment measured %s; the optimiser learns nothing from it",
                    need.job_id,
                    previous,
                    wanted,
                )
            for index, loss in enumerate(losses):
                if loss is not None:  # the loss as the experiment's derived property
                    self.store.record_experiment(
                        job_id=need.job_id,
                        experiment_id=f"{need.job_id}/g{previous}s{index}",
                        recorded_at=self.service.clock(),
                        derived={"loss": loss},
                    )
        proposals = campaign.propose(need.cycle, need.count)
        self.store.save_optimiser_state(need.job_id, need.cycle, campaign.state())
        return proposals

    def _load(self, job_id: str) -> BayesianCampaign:
        saved = self.store.load_optimiser_state(job_id)
        if saved is not None:
            return BayesianCampaign.restore(saved[1])  # type: ignore[arg-type]
        core: SchedulerCore = self.service.core
        job = core.run_job(job_id)
        if job is None:  # proposals are asked for by a job the core holds
            raise KeyError(f"job_id: no job '{job_id}'")
        return BayesianCampaign.from_spec(job.spec.campaign, random_state=seed_for(job_id))


def cycle_results(
    store: Store, job_id: str, cycle: int, campaign: BayesianCampaign
) -> list[tuple[dict[str, Any], dict[str, float] | None]]:
    """(parameters, properties) of each experiment of ``cycle``; None when nothing was measured."""
    asked = next(op for op in campaign.state()["log"] if op["op"] == "ask" and op["cycle"] == cycle)
    measured: dict[str, dict[str, float]] = {}
    for record in store.experiments(job_id):
        measured.setdefault(record.experiment_id, {}).update(numeric_leaves(record.measured))
    prefix = f"{job_id}/g{cycle}s"
    results = []
    for index, params in enumerate(asked["proposals"]):
        properties = measured.get(f"{prefix}{index}")
        wanted = set(campaign.loss.to_dict()["terms"])
        usable = properties if properties and wanted <= set(properties) else None
        results.append((dict(params), usable))
    return results


def numeric_leaves(data: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    """Every number in nested measured data, by its own key ("lambda_max_nm": 452.1)."""
    for key, value in data.items():
        if isinstance(value, Mapping):
            yield from numeric_leaves(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield key, float(value)
