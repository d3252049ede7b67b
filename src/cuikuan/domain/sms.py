"""SMS length, encoding, segments and parts, exactly as a handset or SMSC counts them.

    >>> m = measure("Hello {name}")
    >>> (m.encoding, m.units, m.segments)
    ('GSM-7', 12, 1)

GSM-7 (3GPP TS 23.038 default alphabet and its extension table): 160 septets in one message,
153 a part once concatenated; an extension character (^ { } \\ [ ~ ] | € and form feed) costs an
escape plus itself, two septets, and the pair is never split across parts. Any other character
makes the whole message UCS-2: 70 UTF-16 code units in one, 67 a part, and a surrogate pair (an
emoji, say) is never split. Parts are filled greedily, as SMSCs and Twilio's segment calculator do.

Chinese carriers bill by characters of signature plus body: up to 70 is one message, beyond that
ceil(n / 67) (COMPLIANCE.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "\f^{}\\[~]|€"
_GSM7_COST = {c: 1 for c in GSM7_BASIC if c != "\x1b"} | {c: 2 for c in GSM7_EXTENSION}

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
CN_SINGLE, CN_PART = 70, 67


@dataclass(frozen=True)
class Measurement:
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int  # Unicode code points
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    cn_billing_units: int
    parts: tuple[str, ...]

    def as_dict(self, with_parts: bool = False) -> dict[str, object]:
        out: dict[str, object] = {
            "encoding": self.encoding,
            "characters": self.characters,
            "units": self.units,
            "segments": self.segments,
            "cn_billing_units": self.cn_billing_units,
        }
        if with_parts:
            out["parts"] = list(self.parts)
        return out


_GSM7_SET = frozenset(_GSM7_COST)
_GSM7_EXTENDED = frozenset(GSM7_EXTENSION)


def is_gsm7(text: str) -> bool:
    return _GSM7_SET.issuperset(text)


def _units(text: str, gsm: bool) -> int:
    if gsm:
        return len(text) + sum(1 for c in text if c in _GSM7_EXTENDED)
    return len(text.encode("utf-16-le")) // 2


def _cost(char: str, gsm: bool) -> int:
    if gsm:
        return _GSM7_COST[char]
    return 2 if ord(char) > 0xFFFF else 1


def split(text: str) -> tuple[str, tuple[str, ...], int]:
    """(encoding, parts, units): the parts a sender hands to the network, in order."""
    gsm = is_gsm7(text)
    single, part_limit = (GSM7_SINGLE, GSM7_PART) if gsm else (UCS2_SINGLE, UCS2_PART)
    units = _units(text, gsm)
    encoding = "GSM-7" if gsm else "UCS-2"
    if units <= single:
        return encoding, ((text,) if text else ()), units
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:
        cost = _cost(char, gsm)
        if used + cost > part_limit:
            parts.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += cost
    if current:
        parts.append("".join(current))
    return encoding, tuple(parts), units


def segments(text: str) -> int:
    """len(split(text)[1]), without building the parts when every character costs one unit
    (no GSM-7 extension character, no UCS-2 surrogate pair): then greedy filling is a division."""
    if not text:
        return 0
    gsm = is_gsm7(text)
    units = _units(text, gsm)
    single, part_limit = (GSM7_SINGLE, GSM7_PART) if gsm else (UCS2_SINGLE, UCS2_PART)
    if units <= single:
        return 1
    uniform = _GSM7_EXTENDED.isdisjoint(text) if gsm else units == len(text)
    if uniform:
        return -(-units // part_limit)
    return len(split(text)[1])


def cn_billing_units(text: str) -> int:
    n = len(text)
    if n == 0:
        return 0
    return 1 if n <= CN_SINGLE else -(-n // CN_PART)


def measure(text: str, signature: str = "") -> Measurement:
    """Measure `signature` + `text` as one message (in China the signature leads every SMS)."""
    full = signature + text
    encoding, parts, units = split(full)
    return Measurement(encoding, len(full), units, len(parts), cn_billing_units(full), parts)


# --- the same counts over a column of texts (the plan measures every message of the day) -------


def _char_class(chars: str) -> str:
    return "[" + "".join(f"\\x{{{ord(c):X}}}" for c in chars) + "]"


_GSM7_ONLY = "^" + _char_class("".join(sorted(_GSM7_SET))) + "*$"
_EXTENDED_CLASS = _char_class(GSM7_EXTENSION)
_ASTRAL = "[\\x{10000}-\\x{10FFFF}]"


def text_counts(text: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """What the counts of a text are made of: characters, whether all are GSM-7, extension
    characters, characters beyond the BMP. Each of a concatenation's is its parts' sum (and)."""
    return (
        text.str.len_chars(),
        text.str.contains(_GSM7_ONLY),
        text.str.count_matches(_EXTENDED_CLASS),
        text.str.count_matches(_ASTRAL),
    )


def segments_expr(text: pl.Expr) -> pl.Expr:
    """`segments` as a column expression; null where the parts must be built to know (an
    extension character or a surrogate pair in a long text): `segments_column` fills those."""
    return segments_of_counts(*text_counts(text))


def segments_of_counts(chars: pl.Expr, gsm: pl.Expr, extended: pl.Expr, astral: pl.Expr) -> pl.Expr:
    """`segments_expr` from a text's `text_counts`."""
    units = pl.when(gsm).then(chars + extended).otherwise(chars + astral)
    single = pl.when(gsm).then(GSM7_SINGLE).otherwise(UCS2_SINGLE)
    part = pl.when(gsm).then(GSM7_PART).otherwise(UCS2_PART)
    uniform = pl.when(gsm).then(extended == 0).otherwise(astral == 0)
    return (
        pl.when(chars == 0)
        .then(0)
        .when(units <= single)
        .then(1)
        .when(uniform)
        .then((units + part - 1) // part)
        .otherwise(None)
        .cast(pl.Int64)
    )


def cn_billing_units_expr(text: pl.Expr) -> pl.Expr:
    return cn_billing_units_of(text.str.len_chars())


def cn_billing_units_of(n: pl.Expr) -> pl.Expr:
    """`cn_billing_units` of a text of `n` characters."""
    return (
        pl.when(n == 0)
        .then(0)
        .when(n <= CN_SINGLE)
        .then(1)
        .otherwise((n + CN_PART - 1) // CN_PART)
        .cast(pl.Int64)
    )


def segments_column(texts: pl.Series) -> pl.Series:
    """`segments` of every text, equal to calling it per text (property-tested)."""
    counted = texts.to_frame("t").select(segments_expr(pl.col("t")).alias("segments"))["segments"]
    missing = counted.is_null() & texts.is_not_null()
    if not missing.any():
        return counted.fill_null(0)
    values = counted.to_list()
    for i, text in zip(missing.arg_true().to_list(), texts.filter(missing).to_list(), strict=True):
        values[i] = segments(text)
    return pl.Series("segments", values, dtype=pl.Int64).fill_null(0)
