"""Registers and bits to values, with the quality a reading deserves.

Decoding is compiled once per point (`compile_codec`) because a site polls the
same few hundred points every few seconds for years: the per-poll work is then
one `struct` pack/unpack and a handful of comparisons. The functions are pure,
so every wire example from the vendors' manuals can be pinned in a unit test
without a network.

Order of judgement, chosen so that a fault never masquerades as a value:
sentinel (on the raw unsigned integer, before any sign or scale) → state bits →
sign → NaN/inf → scale/offset → physical range.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from stackwatch.config.points import ModbusPoint
from stackwatch.readings import Quality, Value

_UNSIGNED = {1: struct.Struct(">H"), 2: struct.Struct(">I"), 4: struct.Struct(">Q")}
_TYPED = {
    "int16": struct.Struct(">h"), "int32": struct.Struct(">i"),
    "float32": struct.Struct(">f"), "float64": struct.Struct(">d"),
}


@dataclass(frozen=True, slots=True)
class Decoded:
    value: Value
    quality: Quality = Quality.GOOD
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Codec:
    """Everything `decode_registers`/`decode_bit` need about one point, precomputed."""

    width: int
    pack: struct.Struct | None  # registers → bytes in value order; None: one big-endian register, no repacking
    reverse_words: bool
    unsigned: struct.Struct
    typed: struct.Struct | None  # None: the unsigned integer is the value
    is_float: bool
    is_float32: bool
    sentinels: frozenset[int]
    bit: int | None
    mask: int | None
    equals: int | None
    invert: bool
    negative_above: int | None
    scale: float
    divisor: float | None  # exact 1/scale when it is a whole number: 305/10 is 30.5, 305*0.1 is not
    offset: float
    nan_is_bad: bool
    valid_min: float | None
    valid_max: float | None


def compile_codec(point: ModbusPoint) -> Codec:
    width = point.width
    swap_bytes = point.byte_order == "little"
    pack = None
    if width > 1 or swap_bytes:
        pack = struct.Struct(("<" if swap_bytes else ">") + "H" * width)
    divisor = None
    if point.scale not in (0.0, 1.0):
        inverse = 1.0 / point.scale
        if abs(inverse - round(inverse)) < 1e-9 and abs(inverse) >= 1:
            divisor = float(round(inverse))
    return Codec(
        width=width,
        pack=pack,
        reverse_words=width > 1 and point.word_order == "little",
        unsigned=_UNSIGNED.get(width, _UNSIGNED[1]),
        typed=_TYPED.get(point.type),
        is_float=point.type in ("float32", "float64"),
        is_float32=point.type == "float32",
        sentinels=frozenset(point.sentinels),
        bit=point.bit,
        mask=point.mask,
        equals=point.equals,
        invert=point.invert,
        negative_above=point.negative_above if point.type in ("int16", "uint16", "int32", "uint32") else None,
        scale=point.scale,
        divisor=divisor,
        offset=point.offset,
        nan_is_bad=point.nan_is_bad,
        valid_min=point.valid_min,
        valid_max=point.valid_max,
    )


def decode_registers(codec: Codec, registers: Sequence[int], start: int = 0) -> Decoded:
    """The point whose first register is `registers[start]`."""
    if codec.pack is None:
        raw = registers[start]
        data = b""
    else:
        words = registers[start:start + codec.width]
        if codec.reverse_words:
            words = words[::-1]
        data = codec.pack.pack(*words)
        raw = codec.unsigned.unpack(data)[0]
    if raw in codec.sentinels:
        return Decoded(None, Quality.BAD, f"sentinel 0x{raw:0{codec.width * 4}X}")
    if codec.bit is not None:
        return Decoded(bool(raw >> codec.bit & 1) != codec.invert)
    if codec.mask is not None:
        return Decoded(((raw & codec.mask) == codec.equals) != codec.invert)
    number: int | float
    if codec.negative_above is not None:
        number = -(raw - codec.negative_above) if raw >= codec.negative_above else raw
    elif codec.typed is None:
        number = raw
    elif codec.pack is None:  # one big-endian int16: no need to repack
        number = raw - 0x10000 if raw & 0x8000 else raw
    else:
        number = codec.typed.unpack(data)[0]
        if codec.is_float and not math.isfinite(number):
            what = "NaN" if math.isnan(number) else "inf"
            if codec.nan_is_bad:
                return Decoded(None, Quality.BAD, what)
            return Decoded(number, Quality.UNCERTAIN, what)
        if codec.is_float32:
            number = shortest_float32(number)
    return _scaled(codec, number)


_FLOAT32 = struct.Struct(">f")


def shortest_float32(number: float) -> float:
    """The shortest decimal that is the same float32: the transmitter's 30.56, not 30.559999465942383.

    A float32 has 6–9 significant decimal digits; widening it to a Python float
    would otherwise store binary noise the sensor never measured.
    """
    packed = _FLOAT32.pack(number)
    for digits in (6, 7, 8):
        candidate = float(f"{number:.{digits}g}")
        if _FLOAT32.pack(candidate) == packed:
            return candidate
    return float(f"{number:.9g}")


def _scaled(codec: Codec, number: int | float) -> Decoded:
    value: int | float
    if codec.divisor is not None:
        value = number / codec.divisor + codec.offset
    elif codec.scale == 1.0 and codec.offset == 0.0:
        value = number
    else:
        value = number * codec.scale + codec.offset
    if codec.valid_min is not None and value < codec.valid_min:
        return Decoded(value, Quality.UNCERTAIN, f"below valid_min {codec.valid_min:g}")
    if codec.valid_max is not None and value > codec.valid_max:
        return Decoded(value, Quality.UNCERTAIN, f"above valid_max {codec.valid_max:g}")
    return Decoded(value)


def decode_bit(codec: Codec, bits: Sequence[bool] | Sequence[int], start: int = 0) -> Decoded:
    """A coil or discrete input."""
    return Decoded(bool(bits[start]) != codec.invert)


def decode_point(point: ModbusPoint, values: Sequence[int] | Sequence[bool], start: int = 0) -> Decoded:
    """One-off decoding for tests and tools; pollers keep the compiled `Codec`."""
    codec = compile_codec(point)
    if point.table in ("coil", "discrete"):
        return decode_bit(codec, values, start)
    return decode_registers(codec, values, start)
