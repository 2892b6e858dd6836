"""The schedule topic's pace: on change, at least every refresh, planning at most a share."""

from __future__ import annotations

import pytest

from octopus_scheduler.service.publication_pacer import PublicationPacer


def test_a_change_is_published_soon_and_nothing_new_only_at_the_refresh() -> None:
    pacer = PublicationPacer(min_interval_s=0.5, refresh_s=2.0, cpu_share=0.2)
    assert pacer.due(0.0, changed=False)  # the first publication, whatever happened
    pacer.published(0.0, cost_s=0.01)
    assert not pacer.due(0.3, changed=True)  # too soon even for a change
    assert pacer.due(0.5, changed=True)
    assert not pacer.due(1.9, changed=False)
    assert pacer.due(2.0, changed=False)  # the now-line of a live Gantt moves on


def test_an_expensive_plan_is_published_at_most_as_often_as_it_costs() -> None:
    pacer = PublicationPacer(min_interval_s=0.5, refresh_s=2.0, cpu_share=0.2)
    pacer.published(10.0, cost_s=1.5)  # hundreds of queued jobs: 1.5 s to plan
    assert pacer.interval_s == pytest.approx(7.5)
    assert not pacer.due(17.4, changed=True)
    assert pacer.due(17.5, changed=True)
    # over a long run of changes, planning takes no more than its share of the time
    now, busy = 17.5, 0.0
    while now < 1000.0:
        if pacer.due(now, changed=True):
            pacer.published(now, cost_s=1.5)
            busy += 1.5
        now += 0.25
    assert busy / (now - 17.5) <= 0.2 + 1e-9
    # cheap again (the queue drained): back to the fast pace
    pacer.published(now, cost_s=0.02)
    assert pacer.due(now + 0.5, changed=True)


def test_a_share_outside_0_1_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="cpu_share"):
        PublicationPacer(cpu_share=0.0)
