"""NE-1000 wire format helpers: numbers, frames, unit choice (no I/O)."""

from __future__ import annotations

import pytest

from octopus_modules.drivers.serial_ne1000_protocol import (
    best_rate_units,
    best_volume_units,
    decode_reply,
    encode_reply,
    encode_request,
    format_number,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [(14.567, "14.57"), (0.12345, "0.123"), (5, "5.000"), (123.44, "123.4"), (9999, "9999")],
)
def test_numbers_have_at_most_four_digits(value: float, text: str) -> None:
    assert format_number(value) == text
    assert len(text.replace(".", "")) <= 4


@pytest.mark.parametrize("value", [-0.1, 10_000.0])
def test_numbers_the_pump_cannot_take_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="cannot be sent"):
        format_number(value)


def test_frames_round_trip_and_line_noise_is_skipped() -> None:
    assert encode_request(7, "RAT5.000MM") == b"7RAT5.000MM\r"
    assert encode_request(None, "RUN") == b"RUN\r"
    frame = encode_reply(7, "S", "?OOR")
    assert frame == b"\x0207S?OOR\x03"
    reply = decode_reply(b"\x00garbage" + frame)
    assert (reply.address, reply.prompt, reply.error, reply.alarm) == (7, "S", "?OOR", None)
    alarm = decode_reply(encode_reply(0, "A", "?S"))
    assert (alarm.alarm, alarm.error) == ("S", None)


@pytest.mark.parametrize("frame", [b"00S\x03", b"\x0200S", b"\x02X\x03", b"\x02ab S\x03"])
def test_malformed_frames_are_refused(frame: bytes) -> None:
    with pytest.raises(ValueError):
        decode_reply(frame)


@pytest.mark.parametrize(
    ("rate_ul_s", "expected"),
    [
        (50.0, (3000.0, "UM")),
        (500.0, (30.0, "MM")),
        (0.01, (36.0, "UH")),
        (0.0001, (0.36, "UH")),
    ],
)
def test_rate_units_keep_significant_digits(rate_ul_s: float, expected: tuple[float, str]) -> None:
    value, unit = best_rate_units(rate_ul_s)
    assert (round(value, 6), unit) == expected


def test_rates_and_volumes_beyond_the_number_format_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        best_rate_units(1e7)
    assert best_volume_units(250.0) == (250.0, "UL")
    assert best_volume_units(25_000.0) == (25.0, "ML")
    with pytest.raises(ValueError, match="volume"):
        best_volume_units(1e8)
