"""The report as one self-contained HTML file: tables and inline SVG charts, no script, no
external file, so it opens offline and can be mailed as it is."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from cuikuan.domain.money import format_minor
from cuikuan.services.report import Report
from cuikuan.web import charts

HEAD = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>催款 cuikuan — 效果报告 report {{ r.start }} – {{ r.end }}</title>
<style>
body{font-family:{{ font }};margin:24px;color:#111;max-width:1100px}
h1{font-size:22px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right} th{background:#f4f6f8}
td:first-child,th:first-child{text-align:left}
td.intents{text-align:left;font-size:11px;min-width:220px}
.wide{overflow-x:auto}
.better{color:#2e8b57;font-weight:bold}.worse{color:#c0392b;font-weight:bold}.unknown{color:#d68910}
.note{color:#555;font-size:12px} figure{margin:12px 0}
</style></head><body>
"""
BODY = """<h1>效果报告 What the messages recovered · {{ r.start }} – {{ r.end }}</h1>
<p class="note">币种 currency {{ r.currency }} · 付款窗口 pay window {{ r.window_days }} 天/days ·
生成 generated {{ generated }}. {% for n in r.notes %}{{ n }}. {% endfor %}</p>

<h2>漏斗 Funnel</h2>
<figure>{{ funnel }}</figure>
<table><tr><th>step</th><th>matched</th><th>stopped before the draw</th><th>held back</th><th>treated</th>
<th>stopped after the draw</th><th>sent</th><th>delivered</th><th>why stopped</th></tr>
{% for f in r.funnel %}<tr><td>{{ f.step }}</td><td>{{ f.matched }}</td><td>{{ f.stopped_before_draw }}</td><td>{{ f.held }}</td>
<td>{{ f.treated }}</td><td>{{ f.suppressed_after_draw }}</td><td>{{ f.sent }}</td><td>{{ f.delivered }}</td>
<td class="intents">{% for rule, n in f.before_draw.items() %}{{ n }} {{ rule }} (before); {% endfor %}{% for rule, n in f.after_draw.items() %}{{ n }} {{ rule }} (after); {% endfor %}</td></tr>
{% else %}<tr><td colspan="9">没有数据 no data</td></tr>{% endfor %}</table>

<h2>对照组提升 Uplift against the control group</h2>
<figure>{{ forest }}</figure>
<p class="note">Intention to treat: each customer a step chose counts once, from the first of its rows that reached the
control draw, treated whatever became of the message (the sent share says how many went out); both arms' pay windows
start when the contact window opened.</p>
<div class="wide"><table><tr><th>step</th><th>treated</th><th>control</th><th>window open</th><th>sent</th><th>pay rate treated</th><th>pay rate control</th>
<th>difference [95% interval]</th><th>verdict</th><th>recovered / member, difference [95%]</th><th>verdict</th>
<th>incremental [95%]</th><th>cost</th><th>cost per unit incremental</th></tr>
{% for u in r.uplift %}<tr><td>{{ u.step }}</td><td>{{ u.pay_rate.n_treated }}</td><td>{{ u.pay_rate.n_control }}</td>
<td>{{ u.open_windows }}</td><td>{{ pct(u.sent_share) }}</td>
<td>{{ pct(u.pay_rate.treated) }}</td><td>{{ pct(u.pay_rate.control) }}</td>
<td>{{ pp(u.pay_rate.difference) }} [{{ pp(u.pay_rate.low) }}, {{ pp(u.pay_rate.high) }}]</td>
<td class="{{ cls(u.pay_rate.verdict) }}">{{ u.pay_rate.verdict }}</td>
<td>{{ money(u.recovered_per_member.difference) }} [{{ money(u.recovered_per_member.low) }}, {{ money(u.recovered_per_member.high) }}]</td>
<td class="{{ cls(u.recovered_per_member.verdict) }}">{{ u.recovered_per_member.verdict }}</td>
<td>{{ money(u.incremental) }} [{{ money(u.incremental_low) }}, {{ money(u.incremental_high) }}]</td>
<td>{{ money(u.cost) }}</td><td>{{ "—" if u.cost_per_incremental is none else "%.4f"|format(u.cost_per_incremental) }}</td></tr>
{% else %}<tr><td colspan="14">没有数据 no data</td></tr>{% endfor %}</table></div>
{% if r.weekly %}<h2>每周趋势 Weekly trend (all steps)</h2>
<table><tr><th>week from</th><th>treated</th><th>control</th><th>pay rate treated</th><th>pay rate control</th><th>difference [95%]</th><th>verdict</th></tr>
{% for w in r.weekly %}<tr><td>{{ w.week }}</td><td>{{ w.pay_rate.n_treated }}</td><td>{{ w.pay_rate.n_control }}</td>
<td>{{ pct(w.pay_rate.treated) }}</td><td>{{ pct(w.pay_rate.control) }}</td>
<td>{{ pp(w.pay_rate.difference) }} [{{ pp(w.pay_rate.low) }}, {{ pp(w.pay_rate.high) }}]</td>
<td class="{{ cls(w.pay_rate.verdict) }}">{{ w.pay_rate.verdict }}</td></tr>{% endfor %}</table>{% endif %}
{% if r.variants %}<h2>冠军/挑战者 Variants (challenger against champion)</h2>
<table><tr><th>step</th><th>challenger</th><th>template</th><th>pay rate difference [95%]</th><th>verdict</th>
<th>recovered / member, difference [95%]</th><th>verdict</th></tr>
{% for v in r.variants %}<tr><td>{{ v.step }}</td><td>{{ v.challenger }} vs {{ v.champion }}</td><td>{{ v.template }}</td>
<td>{{ pp(v.pay_rate.difference) }} [{{ pp(v.pay_rate.low) }}, {{ pp(v.pay_rate.high) }}]</td>
<td class="{{ cls(v.pay_rate.verdict) }}">{{ v.pay_rate.verdict }}</td>
<td>{{ money(v.recovered_per_member.difference) }} [{{ money(v.recovered_per_member.low) }}, {{ money(v.recovered_per_member.high) }}]</td>
<td class="{{ cls(v.recovered_per_member.verdict) }}">{{ v.recovered_per_member.verdict }}</td></tr>{% endfor %}</table>{% endif %}

<h2>按步骤归因 Attribution per step, template and variant</h2>
<div class="wide"><table><tr>{% for c in step_columns %}<th>{{ c.replace("_", " ") }}</th>{% endfor %}</tr>
{% for row in steps %}<tr>{% for c in step_columns %}<td{% if c == "by_intent" %} class="intents"{% endif %}>{{ row[c] }}</td>{% endfor %}</tr>
{% else %}<tr><td colspan="{{ step_columns|length }}">没有数据 no data</td></tr>{% endfor %}</table></div>

<h2>分账龄回收 Recovery per bucket</h2>
<table><tr><th>bucket at the start</th><th>loans</th><th>overdue at the start</th><th>collected in the range</th><th>recovered</th></tr>
{% for b in r.buckets %}<tr><td>{{ b.bucket }}</td><td>{{ b.loans }}</td><td>{{ money(b.overdue_at_start) }}</td>
<td>{{ money(b.collected) }}</td><td>{{ pct(b.recovery_rate) }}</td></tr>{% endfor %}</table>

<h2>迁徙率 Roll rates</h2>
{% for m in r.roll_rates %}<figure>{{ matrices[loop.index0] }}</figure>
<p class="note">{{ m.from_date }} → {{ m.to_date }}: share of the loans in each bucket at the start that are in each bucket at the end.</p>
<table><tr><th>from (balances)</th><th>outstanding</th>{% for c in m.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for b in m.balances %}<tr><td>{{ b["from"] }}</td><td>{{ money(b.outstanding) }}</td>{% for c in m.columns %}<td>{{ pct(b[c]) }}</td>{% endfor %}</tr>{% endfor %}</table>
{% else %}<p class="note">没有数据 no data (the range needs two dates)</p>{% endfor %}
<p>治愈率 Cure rate: {{ cure }} · 承诺兑现率 Promise kept rate: {{ kept }}</p>

<h2>送达率 Delivery per channel and gateway</h2>
<table><tr><th>channel</th><th>gateway</th><th>sent</th><th>delivered</th><th>undelivered</th><th>expired</th><th>awaiting</th><th>delivery rate</th></tr>
{% for d in delivery %}<tr><td>{{ d.channel }}</td><td>{{ d.provider }}</td><td>{{ d.sent }}</td><td>{{ d.delivered }}</td>
<td>{{ d.undelivered }}</td><td>{{ d.expired }}</td><td>{{ d.awaiting }}</td><td>{{ pct(d.delivery_rate) }}</td></tr>
{% else %}<tr><td colspan="8">没有数据 no data</td></tr>{% endfor %}</table>

<h2>退订与投诉 Opt-outs and complaints per template</h2>
<table><tr><th>template</th><th>sent</th><th>opted out</th><th>complained</th><th>opt-out rate</th><th>complaint rate</th></tr>
{% for t in templates %}<tr><td>{{ t.template }}</td><td>{{ t.sent }}</td><td>{{ t.opted_out }}</td><td>{{ t.complained }}</td>
<td>{{ pct(t.opt_out_rate) }}</td><td>{{ pct(t.complaint_rate) }}</td></tr>
{% else %}<tr><td colspan="6">没有数据 no data</td></tr>{% endfor %}</table>

<h2>每日量 Daily volumes</h2>
<figure>{{ daily_sent }}</figure>
<figure>{{ daily_collected }}</figure>
{% if r.changes %}<h2>策略变化 What changed in the strategy</h2>
<ul>{% for c in r.changes %}<li>{{ c }}</li>{% endfor %}</ul>{% endif %}
"""
PAGE = HEAD + BODY + "</body></html>\n"


def render_html(report: Report, generated: datetime) -> str:
    """The whole file: opens offline, can be mailed."""
    return _env().from_string(PAGE).render(**_context(report, generated))


def render_body(report: Report, generated: datetime) -> Markup:
    """The same tables and charts without the page around them (the console's report page)."""
    return Markup(_env().from_string(BODY).render(**_context(report, generated)))  # autoescaped


def _env() -> Environment:
    return Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def _context(report: Report, generated: datetime) -> dict[str, Any]:
    digits = report.digits

    def money(minor: float) -> str:
        if minor in (float("inf"), float("-inf")):
            return "∞" if minor > 0 else "-∞"
        return format_minor(round(minor), digits)

    totals = {k: sum(int(f[k]) for f in report.funnel)
              for k in ("matched", "stopped_before_draw", "held", "treated", "suppressed_after_draw", "sent", "delivered")}  # fmt: skip
    funnel = charts.bars(
        [("匹配 matched", totals["matched"]), ("抽签前拦截 stopped before the draw", totals["stopped_before_draw"]),
         ("对照 held back", totals["held"]), ("处理组 treated", totals["treated"]),
         ("抽签后拦截 stopped after the draw", totals["suppressed_after_draw"]),
         ("发送 sent", totals["sent"]), ("送达 delivered", totals["delivered"])],
        "漏斗 Funnel: messages",
    )  # fmt: skip
    forest = charts.intervals(
        [(u["step"], u["pay_rate"]["difference"], u["pay_rate"]["low"], u["pay_rate"]["high"],
          u["pay_rate"]["verdict"]) for u in report.uplift],
        f"还款率提升 Pay-rate uplift within {report.window_days} days (treated − control)",
    )  # fmt: skip
    matrices = [
        Markup(charts.matrix([r["from"] for r in m["rows"]], m["columns"],
                             [[r[c] for c in m["columns"]] for r in m["rows"]],
                             f"迁徙率 Roll rates {m['from_date']} → {m['to_date']}"))
        for m in report.roll_rates
    ]  # fmt: skip
    days = [str(d)[5:] for d in report.daily["day"]] if report.daily.height else []
    step_columns = [c for c in report.steps.columns if c != "billing_units"]
    steps: list[dict[str, Any]] = report.steps.to_dicts()
    for row in steps:
        if "cost" in row:
            row["cost"] = money(row["cost"])
        if "by_intent" in row:
            counts = json.loads(row["by_intent"] or "{}")
            row["by_intent"] = ", ".join(
                f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])
            )
    cure = report.cure.get("cure_rate")
    kept = report.promises.get("kept_rate")
    return dict(
        r=report,
        font=Markup(charts.FONT),
        generated=generated.strftime("%Y-%m-%d %H:%M UTC"),
        funnel=Markup(funnel),
        forest=Markup(forest),
        matrices=matrices,
        steps=steps,
        step_columns=step_columns,
        delivery=report.delivery.to_dicts(),
        templates=report.templates.to_dicts(),
        daily_sent=Markup(charts.columns(days, [float(x) for x in report.daily["sent"]] if days else [],
                                         "每日发送 Messages sent per day")),
        daily_collected=Markup(charts.columns(
            days, [x / 10**digits for x in report.daily["collected"]] if days else [],
            f"每日回款 Collected per day ({report.currency})", charts.GREEN)),
        cure="—" if cure is None else f"{cure * 100:.1f}% ({report.cure['cured']}/{report.cure['overdue_at_start']})",
        kept="—" if kept is None else f"{kept * 100:.1f}% ({report.promises['kept']}/{report.promises['kept'] + report.promises['broken']})",
        pct=lambda v: "—" if v is None else f"{v * 100:.1f}%",
        pp=lambda v: "—" if abs(v) == float("inf") else f"{round(v * 100, 1) + 0.0:+.1f} pp",
        money=money,
        cls=lambda v: {"better": "better", "worse": "worse"}.get(v, "unknown"),
    )  # fmt: skip
