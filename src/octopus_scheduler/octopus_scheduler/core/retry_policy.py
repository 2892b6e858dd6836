"""How a lab retries failed steps: capped exponential back-off with jitter, in lab time, and a
device that fails too often in a row taken out of order until an operator clears it.

The jitter is drawn from the step id and attempt, not from a random generator: a restarted
scheduler replays the same events into the same back-offs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    backoff_s: float = 0.0  # the first retry waits about this long (0: at once)
    backoff_max_s: float = 600.0  # no retry waits longer
    device_failure_limit: int = 0  # failures in a row that take a device out of order (0: never)

    def delay_s(self, step_id: str, attempt: int) -> float:
        """Back-off before retry ``attempt`` (1, 2, ...): base x 2^(attempt-1), capped, times a
        jitter factor in [0.5, 1) so that steps failing together do not retry together."""
        if self.backoff_s <= 0:
            return 0.0
        ceiling = min(self.backoff_max_s, self.backoff_s * 2.0 ** min(attempt - 1, 60))
        digest = hashlib.sha256(f"{step_id}#{attempt}".encode()).digest()
        jitter = 0.5 + 0.5 * int.from_bytes(digest[:8], "big") / 2.0**64
        return ceiling * jitter
