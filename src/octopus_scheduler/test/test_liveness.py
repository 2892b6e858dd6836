from __future__ import annotations

from octopus_scheduler.liveness import ModuleLiveness


def test_a_silent_module_is_down_after_two_periods_and_back_on_its_next_beat() -> None:
    live = ModuleLiveness(["A", "B"], period_s=1.0, started=0.0, grace_s=5.0)
    assert live.beat("A", 0.5) == (True, False)
    assert live.beat("A", 1.5) == (False, False)
    assert live.newly_down(3.4) == []  # 1.9 s of silence: not yet
    assert live.newly_down(3.6) == ["A"]  # 2.1 s: down, once
    assert live.newly_down(4.0) == []
    assert live.beat("A", 4.1) == (False, True)
    assert live.down == set()


def test_a_module_never_heard_of_gets_the_discovery_grace() -> None:
    live = ModuleLiveness(["A"], period_s=0.5, started=10.0, grace_s=5.0)
    assert live.newly_down(15.9) == []  # grace 5 s + 2 periods
    assert live.newly_down(16.1) == ["A"]
