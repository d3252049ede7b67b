"""Templates without a budget: tracebacks, hangs and gigabytes. Each is now a lint error with
`file:line: budget:` (or `render:`), found in seconds by `templates check`, and the plan never
uses it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("case", sorted(BODIES))
def test_a_template_beyond_its_budget_is_a_lint_error_found_in_seconds(
    book: Path, case: str
) -> None:
    body, rule = BODIES[case]
    path = book / "templates" / "due_today.zh-CN.txt"
    path.write_text(HEAD + body + "\n", encoding="utf-8")
    began = time.monotonic()
    checked = capped(["templates", "check"], book, seconds=60)
    assert time.monotonic() - began < 20, case
    assert checked.returncode == 1, (case, checked.stdout, checked.stderr)
    assert f"due_today.zh-CN.txt:7: {rule}:" in checked.stdout, (case, checked.stdout)
    assert "Traceback" not in checked.stderr
    shown = capped(["templates", "preview", "due_today", "--locale", "zh-CN"], book, seconds=60)
    assert shown.returncode != 0 and "Traceback" not in shown.stderr, (case, shown.stderr)
