"""Charts as inline SVG strings: no script, no library, no download, so the report opens offline
in any browser and prints. Chinese labels use the system's CJK fonts through the font stack.

    svg = bars([("发送 sent", 120), ("送达 delivered", 110)], title="漏斗 Funnel")
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

FONT = (
    "'Noto Sans CJK SC','Noto Sans SC','WenQuanYi Micro Hei','PingFang SC','Microsoft YaHei',"
    "'Source Han Sans SC',sans-serif"
)
BLUE, GREY, GREEN, RED, AMBER = "#2f6fb0", "#9aa5b1", "#2e8b57", "#c0392b", "#d68910"


def _svg(width: int, height: int, body: str, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'style="font-family:{FONT};font-size:12px">'
        f'<text x="0" y="16" font-size="14" font-weight="bold">{escape(title)}</text>{body}</svg>'
    )


def bars(items: Sequence[tuple[str, float]], title: str, fmt: str = "{:,.0f}") -> str:
    """Horizontal bars, longest first as given (a funnel when the items shrink)."""
    width, label_w, row = 640, 170, 26
    top = max((v for _, v in items), default=0) or 1
    parts = []
    for i, (label, value) in enumerate(items):
        y = 30 + i * row
        w = (width - label_w - 90) * value / top
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{BLUE}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{escape(fmt.format(value))}</text>'
        )
    if not items:
        parts.append('<text x="0" y="46" fill="#666">没有数据 no data</text>')
    return _svg(width, 40 + max(len(items), 1) * row, "".join(parts), title)


def intervals(rows: Sequence[tuple[str, float, float, float, str]], title: str) -> str:
    """A forest plot: per label, the estimate (percentage points) and its interval around 0."""
    width, label_w, row = 640, 170, 28
    finite = [x for _, d, lo, hi, _ in rows for x in (d, lo, hi) if abs(x) != float("inf")]
    span = max([abs(x) for x in finite] + [0.01])
    left, right = label_w + 10, width - 20
    mid = (left + right) / 2

    def x(v: float) -> float:
        v = max(-span, min(span, v))
        return mid + (right - left) / 2 * v / span

    parts = [
        f'<line x1="{mid}" y1="26" x2="{mid}" y2="{30 + len(rows) * row}" stroke="#444" '
        'stroke-dasharray="3,3"/>',
        f'<text x="{mid}" y="{44 + len(rows) * row}" text-anchor="middle">0</text>',
        f'<text x="{left}" y="{44 + len(rows) * row}">{-span * 100:+.1f} pp</text>',
        f'<text x="{right}" y="{44 + len(rows) * row}" text-anchor="end">{span * 100:+.1f} pp</text>',
    ]
    colours = {"better": GREEN, "worse": RED}
    for i, (label, d, lo, hi, verdict) in enumerate(rows):
        y = 30 + i * row + row / 2
        c = colours.get(verdict, AMBER)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 4}" text-anchor="end">{escape(label)}</text>'
            f'<line x1="{x(lo):.1f}" y1="{y}" x2="{x(hi):.1f}" y2="{y}" stroke="{c}" stroke-width="2"/>'
            f'<circle cx="{x(d):.1f}" cy="{y}" r="4" fill="{c}"><title>{escape(label)}: '
            f"{d * 100:+.1f} pp [{lo * 100:+.1f}, {hi * 100:+.1f}] {escape(verdict)}</title></circle>"
        )
    if not rows:
        parts.append('<text x="0" y="46" fill="#666">没有数据 no data</text>')
    return _svg(width, 56 + max(len(rows), 1) * row, "".join(parts), title)


def matrix(
    rows: Sequence[str], columns: Sequence[str], cells: Sequence[Sequence[float]], title: str
) -> str:
    """A heat map of shares (0..1), each cell labelled in percent."""
    label_w, cell_w, cell_h = 90, 78, 28
    width = label_w + cell_w * len(columns) + 10
    parts = []
    for j, name in enumerate(columns):
        parts.append(
            f'<text x="{label_w + j * cell_w + cell_w / 2}" y="40" text-anchor="middle">{escape(name)}</text>'
        )
    for i, name in enumerate(rows):
        y = 48 + i * cell_h
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end">{escape(name)}</text>'
        )
        for j, share in enumerate(cells[i]):
            alpha = 0.08 + 0.85 * share
            parts.append(
                f'<rect x="{label_w + j * cell_w}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{BLUE}" fill-opacity="{alpha:.2f}"/>'
                f'<text x="{label_w + j * cell_w + cell_w / 2}" y="{y + 18}" text-anchor="middle" '
                f'fill="{"#fff" if share > 0.55 else "#111"}">{share * 100:.1f}%</text>'
            )
    return _svg(width, 56 + len(rows) * cell_h, "".join(parts), title)


def columns(labels: Sequence[str], values: Sequence[float], title: str, colour: str = BLUE) -> str:
    """Vertical bars per day (daily volumes), every 5th label shown."""
    width, height, bottom = 640, 220, 180
    n = max(len(values), 1)
    top = max(values, default=0) or 1
    step = (width - 60) / n
    parts = [
        f'<text x="4" y="40">{top:,.0f}</text>',
        f'<line x1="50" y1="{bottom}" x2="{width}" y2="{bottom}" stroke="#444"/>',
    ]
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        h = (bottom - 40) * v / top
        x = 55 + i * step
        parts.append(
            f'<rect x="{x:.1f}" y="{bottom - h:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{escape(label)}: {v:,.0f}</title></rect>'
        )
        if i % 5 == 0:
            parts.append(f'<text x="{x:.1f}" y="{bottom + 16}">{escape(label)}</text>')
    if not values:
        parts.append('<text x="60" y="100" fill="#666">没有数据 no data</text>')
    return _svg(width, height, "".join(parts), title)
