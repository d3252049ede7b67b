"""Customer education (seed 4.4): a short tip appended only when it costs nothing.

    text = with_tip(text, tips, key="C001/2026-11-29")

A tip is added only if the message keeps its number of SMS segments and Chinese billing units;
the tip tried first rotates stably with `key`, so one borrower does not see the same one daily.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from cuikuan.domain.sms import cn_billing_units, segments


def with_tip(text: str, tips: Sequence[str], key: str) -> str:
    if not tips or not text:
        return text
    base_segments, base_units = segments(text), cn_billing_units(text)
    start = zlib.crc32(key.encode()) % len(tips)
    for i in range(len(tips)):
        tip = tips[(start + i) % len(tips)]
        joiner = " " if tip[:1].isascii() and text[-1:].isascii() else ""
        candidate = text + joiner + tip
        if segments(candidate) <= base_segments and cn_billing_units(candidate) <= base_units:
            return candidate
    return text
