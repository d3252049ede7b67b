"""Templates without a budget: tracebacks, hangs and gigabytes. Each is now a lint error with
`file:line: budget:` (or `render:`), found in seconds by `templates check`, and the plan never
uses it."""

from __future__ import annotations

import time
from pathlib import Path

from tests.hostile.conftest import capped

HEAD = "---\nname: due_today\nchannel: sms\ntone: neutral\ndescription: x\n---\n"
BODIES = {
    "division": ("{{ signature }}您好{{ 1 // 0 }}", "budget"),
    "power": ("{{ signature }}您好{{ 2 ** 20000 }}", "budget"),
    "repeat": ("{{ signature }}您好{{ 'x' * 10**8 }}", "budget"),
    "replace": ("{{ signature }}{{ ('x' * 10000) | replace('x', 'xxxxx') }}", "budget"),
    "nested loops": (
        "{{ signature }}{% for a in 'x' * 10000 %}{% for b in 'x' * 10000 %}{% endfor %}{% endfor %}",
        "budget",
    ),
    "recursion": (
        "{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}{{ signature }}{{ f() }}",
        "budget",
    ),
    "long text": (
        "{{ signature }}{% for a in 'x' * 5000 %}{{ '一二三四五' }}{% endfor %}",
        "budget",
    ),
    "text and number": ("{{ signature }}{{ 'a' + 1 }}", "render"),
}


def test_templates_beyond_their_budget_are_lint_errors_found_in_seconds(book: Path) -> None:
    names = {}
    for k, case in enumerate(sorted(BODIES)):
        name = f"hostile_{k}"
        names[case] = name
        head = HEAD.replace("name: due_today", f"name: {name}")
        (book / "templates" / f"{name}.zh-CN.txt").write_text(
            head + BODIES[case][0] + "\n", encoding="utf-8"
        )
    began = time.monotonic()
    checked = capped(["templates", "check"], book, seconds=60)
    assert time.monotonic() - began < 30
    assert checked.returncode == 1 and "Traceback" not in checked.stderr, checked.stderr
    for case, name in names.items():
        rule = BODIES[case][1]
        assert f"{name}.zh-CN.txt:7: {rule}:" in checked.stdout, (case, checked.stdout)
    shown = capped(["templates", "preview", names["nested loops"], "--locale", "zh-CN"], book)
    assert shown.returncode != 0 and "Traceback" not in shown.stderr, shown.stderr
