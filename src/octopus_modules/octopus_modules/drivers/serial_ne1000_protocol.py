"""Wire format of New Era Pump Systems syringe pumps (NE-1000 family), Basic mode.

Shared by the driver and the emulator so both speak the same documented format:

* request: ``[address] COMMAND [data] CR``; spaces are ignored by the pump.
* reply: ``STX aa p [data] ETX`` with ``aa`` the two-digit address and ``p`` the
  prompt: ``I`` infusing, ``W`` withdrawing, ``S`` stopped, ``P`` paused,
  ``T`` timed pause, ``U`` waiting for trigger, ``X`` purging.
* alarm reply: ``STX aa A ? c ETX`` with ``c`` the alarm code.
* error reply: data ``?`` (unknown command), ``?NA`` (not applicable now),
  ``?OOR`` (out of range), ``?COM`` (invalid packet), ``?IGN`` (ignored).
* numbers: at most 4 digits plus a decimal point.
"""

from __future__ import annotations

from dataclasses import dataclass

STX = b"\x02"
ETX = b"\x03"
CR = b"\r"

PROMPTS = {
    "I": "infusing",
    "W": "withdrawing",
    "S": "stopped",
    "P": "paused",
    "T": "timed pause",
    "U": "waiting for trigger",
    "X": "purging",
}
ALARMS = {
    "R": "pump was reset (power interrupted)",
    "S": "pump motor stalled",
    "T": "safe-mode communications timeout",
    "E": "pumping program error",
    "O": "pumping program phase out of range",
}
ERRORS = {
    "?": "command not recognised",
    "?NA": "command not applicable now",
    "?OOR": "value out of range",
    "?COM": "invalid communications packet",
    "?IGN": "command ignored",
}
RATE_UNITS_UL_PER_S = {  # rate unit code -> µL/s per unit
    "UM": 1.0 / 60.0,
    "MM": 1000.0 / 60.0,
    "UH": 1.0 / 3600.0,
    "MH": 1000.0 / 3600.0,
}
VOLUME_UNITS_UL = {"UL": 1.0, "ML": 1000.0}
MAX_NUMBER = 9999.0


@dataclass(frozen=True)
class Reply:
    address: int
    prompt: str  # one of PROMPTS, or "A" for an alarm
    data: str

    @property
    def alarm(self) -> str | None:
        """Alarm code when this is an alarm reply (``A?c``), else None."""
        return self.data[1:] if self.prompt == "A" and self.data.startswith("?") else None

    @property
    def error(self) -> str | None:
        """Error code (``?``, ``?NA``, ...) when the pump rejected the command."""
        return self.data if self.prompt != "A" and self.data.startswith("?") else None


def format_number(value: float) -> str:
    """Render ``value`` with at most 4 significant digits, as the pump accepts.

    Raises ValueError when it cannot be represented (negative, or >= 10000).
    """
    if not 0 <= value <= MAX_NUMBER:
        raise ValueError(f"{value:g} cannot be sent (pump numbers are 0..{MAX_NUMBER:g})")
    for decimals in (3, 2, 1, 0):
        text = f"{value:.{decimals}f}"
        if len(text.replace(".", "")) <= 4:
            return text
    return f"{value:.0f}"


def encode_request(address: int | None, command: str) -> bytes:
    prefix = "" if address is None else str(address)
    return (prefix + command).encode("ascii") + CR


def decode_reply(frame: bytes) -> Reply:
    """Parse one ``STX ... ETX`` frame; ValueError if malformed."""
    start = frame.rfind(STX)  # ignore line noise before the frame
    if start < 0 or not frame.endswith(ETX):
        raise ValueError(f"not an STX..ETX frame: {frame!r}")
    body = frame[start + 1 : -1].decode("ascii", errors="replace")
    if len(body) < 3 or not body[:2].isdigit():
        raise ValueError(f"malformed reply {frame!r}")
    return Reply(address=int(body[:2]), prompt=body[2], data=body[3:])


def encode_reply(address: int, prompt: str, data: str = "") -> bytes:
    return STX + f"{address:02d}{prompt}{data}".encode("ascii") + ETX


def best_rate_units(rate_ul_s: float) -> tuple[float, str]:
    """Pick the rate unit that shows ``rate_ul_s`` with the most significant digits.

    Raises ValueError when no unit can carry the rate (above 9999 mL/min).
    """
    for unit in ("UM", "MM", "UH", "MH"):
        value = rate_ul_s / RATE_UNITS_UL_PER_S[unit]
        if 1.0 <= value <= MAX_NUMBER:
            return value, unit
    value = rate_ul_s / RATE_UNITS_UL_PER_S["UH"]
    if value < 1.0:
        return value, "UH"  # very slow: µL/h keeps the most digits
    raise ValueError(f"rate {rate_ul_s:g} µL/s exceeds what the pump's number format can carry")


def best_volume_units(volume_ul: float) -> tuple[float, str]:
    """µL while 4 digits suffice, else mL; ValueError above 9999 mL."""
    if volume_ul <= MAX_NUMBER:
        return volume_ul, "UL"
    if volume_ul / VOLUME_UNITS_UL["ML"] <= MAX_NUMBER:
        return volume_ul / VOLUME_UNITS_UL["ML"], "ML"
    raise ValueError(f"volume {volume_ul:g} µL exceeds the pump's 9999 mL number range")
