"""The live state of one module: who holds which device, slot occupancy, stock.

Not thread-safe by itself: :class:`~octopus_modules.runtime.module_runtime.ModuleRuntime` calls
every method under its one lock, which is what makes device reservation atomic
(check and take in one critical section, all devices or none).
"""

from __future__ import annotations

from octopus_modules.description import ModuleDescription
from octopus_modules.runtime.goals import GoalRejected, PreparedGoal
from octopus_modules.runtime.status import ConsumableStatus, DeviceStatus, SlotStatus

OK, ERROR, DISCONNECTED = "ok", "error", "disconnected"
FAULTS = (ERROR, DISCONNECTED)  # the states of a device that takes no goal


class ModuleState:
    def __init__(self, description: ModuleDescription) -> None:
        self.description = description
        self.holders: dict[str, str] = {}  # device -> goal id
        self.health: dict[str, tuple[str, str]] = {d.name: (OK, "") for d in description.devices}
        self.slots: dict[str, list[str]] = {s.type: [""] * s.capacity for s in description.slots}
        self.stock: dict[str, int] = {c.name: c.stock for c in description.consumables}

    # ---- devices ----------------------------------------------------------

    def device_conflict(self, devices: frozenset[str], goal_id: str) -> str:
        """Why ``goal_id`` cannot take ``devices`` now ('' if it can)."""
        for name in sorted(devices):
            holder = self.holders.get(name)
            if holder and holder != goal_id:
                return f"device {name} is busy with goal {holder}"
        return ""

    def device_fault(self, devices: frozenset[str]) -> str:
        for name in sorted(devices):
            state, message = self.health[name]
            if state != OK:
                return f"device {name} is {state}: {message}"
        return ""

    def try_acquire(self, devices: frozenset[str], goal_id: str) -> bool:
        """Take every device in ``devices`` for ``goal_id``, or none of them."""
        if self.device_conflict(devices, goal_id):
            return False
        for name in devices:
            self.holders[name] = goal_id
        return True

    def release(self, devices: frozenset[str], goal_id: str) -> None:
        for name in devices:
            if self.holders.get(name) == goal_id:
                del self.holders[name]

    def release_all(self, goal_id: str) -> None:
        self.release(frozenset(self.holders), goal_id)

    # ---- slots -------------------------------------------------------------

    def check_slots(self, goal: PreparedGoal) -> None:
        for use in goal.task.slots:
            if use.use != "occupy":
                continue
            for i, position in enumerate(goal.positions[use.type]):
                holder = self.slots[use.type][position]
                if holder and holder != goal.samples[i]:
                    raise GoalRejected(
                        f"slots.{use.type}[{i}]",
                        f"position {position} is occupied by sample {holder}",
                    )

    def occupy_slots(self, goal: PreparedGoal) -> None:
        for use in goal.task.slots:
            if use.use == "occupy":
                for sample, position in zip(goal.samples, goal.positions[use.type], strict=True):
                    self.slots[use.type][position] = sample

    def free_slots(self, goal: PreparedGoal, uses: tuple[str, ...]) -> None:
        for use in goal.task.slots:
            if use.use in uses:
                for position in goal.positions[use.type]:
                    self.slots[use.type][position] = ""

    def free_positions(self, type_name: str, positions: list[int]) -> None:
        for position in positions:
            self.slots[type_name][position] = ""

    # ---- consumables ---------------------------------------------------------

    def check_stock(self, goal: PreparedGoal) -> None:
        for name, amount in goal.consumption.items():
            if amount > self.stock[name]:
                raise GoalRejected(
                    f"consumables.{name}", f"needs {amount}, only {self.stock[name]} in stock"
                )

    def take_stock(self, goal: PreparedGoal, sign: int = 1) -> None:
        for name, amount in goal.consumption.items():
            self.stock[name] -= sign * amount

    # ---- snapshot -------------------------------------------------------------

    def device_statuses(self) -> tuple[DeviceStatus, ...]:
        out = []
        for spec in self.description.devices:
            health, message = self.health[spec.name]
            holder = self.holders.get(spec.name, "")
            state = health if health != OK else ("busy" if holder else "idle")
            out.append(DeviceStatus(spec.name, spec.kind, state, holder, message))
        return tuple(out)

    def device_faults(self) -> tuple[DeviceStatus, ...]:
        """The devices in error or disconnected."""
        return tuple(d for d in self.device_statuses() if d.state in FAULTS)

    def slot_statuses(self) -> tuple[SlotStatus, ...]:
        return tuple(
            SlotStatus(
                s.type,
                s.capacity,
                sum(1 for h in self.slots[s.type] if not h),
                tuple((i, h) for i, h in enumerate(self.slots[s.type]) if h),
            )
            for s in self.description.slots
        )

    def consumable_statuses(self) -> tuple[ConsumableStatus, ...]:
        return tuple(
            ConsumableStatus(
                c.name, self.stock[c.name], c.low_stock, c.unit, self.stock[c.name] <= c.low_stock
            )
            for c in self.description.consumables
        )
