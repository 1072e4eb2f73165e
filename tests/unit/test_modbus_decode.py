"""Decoding pinned to the wire examples of shared/domain/devices.md, then every type and order."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.modbus.decode import compile_codec, decode_bit, decode_point, decode_registers
from stackwatch.config.points import ModbusPoint
from stackwatch.readings import Quality


def point(**fields: Any) -> ModbusPoint:
    return ModbusPoint.model_validate({"id": "p", "table": "holding", "address": 0, **fields})


# ---- the manuals' examples ----

def test_xy_md02_temperature_frame() -> None:
    # reply 01 04 02 01 31 79 74: register 0x0131 = 305 → 30.5 °C
    decoded = decode_point(point(table="input", address=1, type="int16", scale=0.1), [0x0131])
    assert decoded.value == 30.5
    assert decoded.quality is Quality.GOOD
    assert decoded.detail == ""


def test_xy_md02_two_register_frame() -> None:
    # reply 01 04 04 01 31 02 22 2A CE: 30.5 °C, 54.6 %
    registers = [0x0131, 0x0222]
    t = point(table="input", address=1, type="int16", scale=0.1)
    rh = point(table="input", address=2, type="uint16", scale=0.1)
    assert decode_point(t, registers, 0).value == 30.5
    assert decode_point(rh, registers, 1).value == 54.6


def test_xy_md02_negative_temperature() -> None:
    assert decode_point(point(type="int16", scale=0.1), [0xFF33]).value == -20.5


def test_xy_md02_hundredths_variant() -> None:
    assert decode_point(point(type="int16", scale=0.01), [3050]).value == 30.5


def test_hmp110_float_low_word_first() -> None:
    decoded = decode_point(point(type="float32", word_order="little"), [0x7AE1, 0x41F4])
    assert decoded.value == pytest.approx(30.56, abs=1e-5)
    assert decoded.quality is Quality.GOOD


def test_same_float_high_word_first() -> None:
    assert decode_point(point(type="float32"), [0x41F4, 0x7AE1]).value == pytest.approx(30.56, abs=1e-5)


def test_sign_magnitude_clone() -> None:
    clone = point(type="uint16", scale=0.1, negative_above=10000)
    assert decode_point(clone, [10205]).value == -20.5
    assert decode_point(clone, [305]).value == 30.5
    assert decode_point(clone, [10000]).value == 0.0


# ---- sentinels, NaN, ranges ----

@pytest.mark.parametrize("raw", [0x7FFF, 0x8000, 0x8001])
def test_hmp110_integer_sentinels_are_bad(raw: int) -> None:
    decoded = decode_point(point(type="int16", scale=0.01, sentinels=[0x7FFF, 0x8000, 0x8001]), [raw])
    assert decoded.value is None
    assert decoded.quality is Quality.BAD
    assert decoded.detail == f"sentinel 0x{raw:04X}"


def test_sentinel_is_compared_before_sign_and_scale() -> None:
    # 0x8000 as int16 is −32768, ×0.01 is −327.68: a plausible-looking number that must never come out
    decoded = decode_point(point(type="int16", scale=0.01, sentinels=[0x8000]), [0x8000])
    assert (decoded.value, decoded.quality) == (None, Quality.BAD)
    assert decode_point(point(type="int16", scale=0.01, sentinels=[0x8000]), [0x8002]).value == -327.66


def test_sentinel_on_32_bit_value_after_word_order() -> None:
    p = point(type="uint32", word_order="little", sentinels=[0xFFFF0000])
    decoded = decode_point(p, [0x0000, 0xFFFF])
    assert decoded.quality is Quality.BAD
    assert decoded.detail == "sentinel 0xFFFF0000"


def test_sentinel_matching_a_float_bit_pattern() -> None:
    p = point(type="float32", sentinels=[0xFF7FFFFF])  # a vendor "error" float
    assert decode_point(p, [0xFF7F, 0xFFFF]).quality is Quality.BAD


def test_quiet_nan_is_bad() -> None:
    decoded = decode_point(point(type="float32", word_order="little"), [0x0000, 0x7FC0])
    assert (decoded.value, decoded.quality, decoded.detail) == (None, Quality.BAD, "NaN")


def test_infinity_is_bad() -> None:
    decoded = decode_point(point(type="float32"), [0x7F80, 0x0000])
    assert (decoded.value, decoded.quality, decoded.detail) == (None, Quality.BAD, "inf")


def test_nan_kept_as_uncertain_when_not_declared_bad() -> None:
    decoded = decode_point(point(type="float32", nan_is_bad=False), [0x7FC0, 0x0000])
    assert decoded.quality is Quality.UNCERTAIN
    assert isinstance(decoded.value, float) and math.isnan(decoded.value)


def test_out_of_physical_range_is_uncertain_and_keeps_value() -> None:
    rh = point(type="uint16", scale=0.1, valid_min=0, valid_max=100)
    high = decode_point(rh, [1050])
    assert (high.value, high.quality, high.detail) == (105.0, Quality.UNCERTAIN, "above valid_max 100")
    t = point(type="int16", scale=0.1, valid_min=-40, valid_max=125)
    low = decode_point(t, [(-500) & 0xFFFF])
    assert (low.value, low.quality, low.detail) == (-50.0, Quality.UNCERTAIN, "below valid_min -40")
    assert decode_point(rh, [1000]).quality is Quality.GOOD


def test_scale_and_offset() -> None:
    assert decode_point(point(type="uint16", scale=0.5, offset=-40), [100]).value == 10.0
    assert decode_point(point(type="int16", scale=2.0), [7]).value == 14.0


def test_unscaled_integers_stay_integers() -> None:
    value = decode_point(point(type="uint16"), [9600]).value
    assert value == 9600 and isinstance(value, int)


# ---- fire-panel word, bits, masks ----

FIRE = point(type="uint16", mask=0x08FF, equals=0x0810)
PRE_ALARM = point(type="uint16", bit=14)
TROUBLE = point(type="uint16", bit=13)
ENABLED = point(type="uint16", bit=10)


@pytest.mark.parametrize(
    ("word", "fire", "pre_alarm", "trouble"),
    [
        (0x0810, True, False, False),  # active + fire alarm
        (0x0C10, True, False, False),  # the same, zone enabled
        (0x4400, False, True, False),  # pre-alarm, enabled
        (0x2000 | 0x0810, True, False, True),  # trouble and fire together
        (0x0400, False, False, False),  # enabled, quiet
        (0x0010, False, False, False),  # low byte without bit 11 means nothing
        (0x0811, False, False, False),  # active, but security (life), not fire
        (0x08FF, False, False, False),  # point not programmed
    ],
)
def test_fire_panel_word(word: int, fire: bool, pre_alarm: bool, trouble: bool) -> None:
    assert decode_point(FIRE, [word]).value is fire
    assert decode_point(PRE_ALARM, [word]).value is pre_alarm
    assert decode_point(TROUBLE, [word]).value is trouble


def test_bit_and_inverted_bit() -> None:
    assert decode_point(ENABLED, [0x0400]).value is True
    assert decode_point(point(type="uint16", bit=10, invert=True), [0x0400]).value is False
    assert decode_point(point(type="uint16", bit=0), [0xFFFE]).value is False


def test_sentinel_wins_over_state_bits() -> None:
    decoded = decode_point(point(type="uint16", bit=14, sentinels=[0xFFFF]), [0xFFFF])
    assert decoded.quality is Quality.BAD


def test_discrete_inputs_and_invert() -> None:
    door = ModbusPoint.model_validate({"id": "door", "table": "discrete", "address": 0})
    contact_closed = ModbusPoint.model_validate({"id": "c", "table": "discrete", "address": 0, "invert": True})
    assert decode_point(door, [True]).value is True
    assert decode_point(door, [False, True], 1).value is True
    assert decode_point(contact_closed, [True]).value is False
    assert decode_bit(compile_codec(door), [0, 1], 1).value is True


def test_byte_swapped_register() -> None:
    assert decode_point(point(type="int16", scale=0.1, byte_order="little"), [0x3101]).value == 30.5


# ---- every type in every order, against an independent encoder ----

FORMATS = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f", "float64": "d"}


def encode(value: float, type_: str, byte_order: str, word_order: str) -> list[int]:
    """Registers as a device with these orders would put them on the wire."""
    data = struct.pack(">" + FORMATS[type_], value)
    words = [data[i:i + 2] for i in range(0, len(data), 2)]
    if word_order == "little":
        words.reverse()
    return [int.from_bytes(w if byte_order == "big" else w[::-1], "big") for w in words]


RANGES = {
    "int16": st.integers(-0x8000, 0x7FFF), "uint16": st.integers(0, 0xFFFF),
    "int32": st.integers(-(2**31), 2**31 - 1), "uint32": st.integers(0, 2**32 - 1),
    "float32": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "float64": st.floats(allow_nan=False, allow_infinity=False),
}


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[str, float]:
    type_ = draw(st.sampled_from(sorted(RANGES)))
    return type_, draw(RANGES[type_])


@given(typed_values(), st.sampled_from(["big", "little"]), st.sampled_from(["big", "little"]), st.integers(0, 3))
def test_round_trip_every_type_and_order(typed: tuple[str, float], byte_order: str, word_order: str,
                                         lead: int) -> None:
    type_, value = typed
    p = point(type=type_, byte_order=byte_order, word_order=word_order)
    registers = [0xDEAD] * lead + encode(value, type_, byte_order, word_order) + [0xBEEF]
    decoded = decode_registers(compile_codec(p), registers, lead)
    assert decoded.quality is Quality.GOOD
    if type_ == "float32":  # the same float32, written as its shortest decimal
        assert isinstance(decoded.value, float)
        assert struct.pack(">f", decoded.value) == struct.pack(">f", value)
        assert len(repr(decoded.value)) <= len(repr(value))
    else:
        assert decoded.value == value


def test_float32_is_the_shortest_decimal_of_the_same_float() -> None:
    assert decode_point(point(type="float32"), [0x41F4, 0x7AE1]).value == 30.56  # not 30.559999465942383
    assert decode_point(point(type="float32"), encode(0.1, "float32", "big", "big")).value == 0.1


@pytest.mark.parametrize(
    ("byte_order", "word_order", "registers"),
    [("big", "big", [0x41F4, 0x7AE1]), ("big", "little", [0x7AE1, 0x41F4]),
     ("little", "big", [0xF441, 0xE17A]), ("little", "little", [0xE17A, 0xF441])],
)
def test_float32_in_all_four_orders(byte_order: str, word_order: str, registers: list[int]) -> None:
    p = point(type="float32", byte_order=byte_order, word_order=word_order)
    assert decode_point(p, registers).value == pytest.approx(30.56, abs=1e-5)


def test_int32_low_word_first_counter() -> None:
    p = point(type="uint32", word_order="little")
    assert decode_point(p, [0x0002, 0x0001]).value == 0x00010002
    assert decode_point(point(type="int32"), [0xFFFF, 0xFFFE]).value == -2


def test_float64_low_word_first() -> None:
    words = encode(-1234.5678, "float64", "big", "little")
    assert decode_point(point(type="float64", word_order="little"), words).value == -1234.5678
