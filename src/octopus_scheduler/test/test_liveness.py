from __future__ import annotations

from octopus_scheduler.service.liveness import Beat, ModuleLiveness


def test_a_silent_module_is_down_after_two_periods_and_back_on_its_next_beat() -> None:
    live = ModuleLiveness(["A", "B"], period_s=1.0, started=0.0, grace_s=5.0)
    assert live.beat("A", 0.5) == (True, False, False)
    assert live.beat("A", 1.5) == (False, False, False)
    assert live.newly_down(3.4) == []  # 1.9 s of silence: not yet
    assert live.newly_down(3.6) == ["A"]  # 2.1 s: down, once
    assert live.newly_down(4.0) == []
    assert live.beat("A", 4.1) == (False, True, False)
    assert live.down == set()


def test_a_module_never_heard_of_gets_the_discovery_grace() -> None:
    live = ModuleLiveness(["A"], period_s=0.5, started=10.0, grace_s=5.0)
    assert live.newly_down(15.9) == []  # grace 5 s + 2 periods
    assert live.newly_down(16.1) == ["A"]


def test_a_new_boot_id_is_a_restart_even_within_the_heartbeat_timeout() -> None:
    live = ModuleLiveness(["A"], period_s=0.5, started=0.0)
    assert live.beat("A", 0.5, "boot1") == Beat(first=True, back=False, restarted=False)
    assert live.beat("A", 1.0, "boot1") == Beat(False, False, False)
    # killed after 1.0 and respawned: its first beat at 1.6 comes before the 1 s timeout
    assert live.newly_down(1.6) == []
    assert live.beat("A", 1.6, "boot2") == Beat(False, False, True)
    assert live.beat("A", 2.1, "boot2") == Beat(False, False, False)
    assert live.down == set()


def test_a_slow_restart_is_down_then_back_as_a_new_process() -> None:
    live = ModuleLiveness(["A"], period_s=0.5, started=0.0)
    live.beat("A", 0.5, "boot1")
    assert live.newly_down(1.6) == ["A"]  # 1.1 s of silence: 2 heartbeats missed
    assert live.beat("A", 3.0, "boot2") == Beat(False, True, True)


def test_a_late_beat_of_a_replaced_process_is_no_restart() -> None:
    live = ModuleLiveness(["A"], period_s=0.5, started=0.0)
    live.beat("A", 0.5, "boot1")
    assert live.beat("A", 1.0, "boot2").restarted
    assert not live.beat("A", 1.1, "boot1").restarted  # the old one, late (or still alive)
    assert not live.beat("A", 1.5, "boot2").restarted  # two processes alternating: no storm
    assert live.beat("A", 2.0, "boot3").restarted


def test_a_module_without_boot_id_is_never_restarted() -> None:
    live = ModuleLiveness(["A"], period_s=0.5, started=0.0)
    assert live.beat("A", 0.5) == Beat(True, False, False)
    assert live.beat("A", 1.0, "") == Beat(False, False, False)
    assert live.beat("A", 1.5, "boot1") == Beat(False, False, False)  # upgraded: first boot id


def test_a_watcher_that_was_stalled_reads_the_beats_that_waited_before_it_judges() -> None:
    live = ModuleLiveness(["A"], period_s=1.0, started=0.0)
    live.beat("A", 0.5)
    assert live.newly_down(0.75) == []
    # the watcher's process stalls from 0.75 to 3.5: A beat at 1.5 and 2.5, unread
    assert live.newly_down(3.5) == []  # 3 s since A was read, but nobody listened
    assert live.newly_down(3.75) == []  # the beats that waited are not read yet
    live.beat("A", 3.8)
    assert live.newly_down(4.0) == [] and live.down == set()


def test_a_module_that_died_while_the_watcher_was_stalled_is_down_a_timeout_after() -> None:
    live = ModuleLiveness(["A", "B"], period_s=1.0, started=0.0)
    live.beat("A", 0.5)
    live.beat("B", 0.5)
    assert live.newly_down(0.75) == []
    assert live.newly_down(3.5) == []  # stalled: it listens again from now
    for look in (4.0, 4.5, 5.0, 5.5):
        live.beat("B", look)  # only B beats
        assert live.newly_down(look) == []
    assert live.newly_down(5.6) == ["A"]  # silent for 2.1 s of listening


def test_looks_a_period_apart_still_judge() -> None:
    live = ModuleLiveness(["A"], period_s=1.0, started=0.0)
    live.beat("A", 0.5)
    assert live.newly_down(1.6) == []
    assert live.newly_down(2.6) == ["A"]  # a look a period later (no stall): 2.1 s of silence


def test_a_watcher_that_stays_late_still_finds_a_dead_module() -> None:
    live = ModuleLiveness(["A"], period_s=1.0, started=0.0)
    live.beat("A", 0.5)  # and never again
    assert live.newly_down(0.75) == []
    assert live.newly_down(2.25) == []  # late: silence counts from here
    assert live.newly_down(3.75) == []  # late again (an overloaded timer): no new start
    assert live.newly_down(5.25) == ["A"]  # 3 s since the count started
