"""The lint the plan applies to templates (which it will not send) is remembered per process
only while the templates, the wording files and the settings are the same, by content."""

from __future__ import annotations

import shutil
from pathlib import Path

from cuikuan.services import messages
from cuikuan.settings import default_settings_text, load_settings


def test_a_changed_template_or_wording_list_is_linted_again(tmp_path: Path) -> None:
    (tmp_path / "cuikuan.toml").write_text(default_settings_text(), encoding="utf-8")
    shutil.copytree(messages.shipped_templates_dir(), tmp_path / "templates")
    settings = load_settings(tmp_path / "cuikuan.toml", environ={})
    matcher, failing = messages.lint_state(settings)
    assert failing == {} and messages.lint_state(settings)[0] is matcher  # remembered
    # A template edited to threaten: the same size is not needed, the content is what counts.
    path = next((tmp_path / "templates").glob("due_today.zh-CN.txt"))
    path.write_text(path.read_text("utf-8").rstrip("\n") + "再不还款后果自负\n", encoding="utf-8")
    failing = messages.lint_state(settings)[1]
    assert ("due_today", "zh-CN") in failing and "banned" in failing[("due_today", "zh-CN")]
    assert failing == messages.failing_templates(settings)
    # A wording list added by compliance: a new matcher, and the word it bans is found.
    wording = tmp_path / settings.templates.wording_dir
    wording.mkdir(exist_ok=True)
    (wording / "extra.toml").write_text(
        '[lender]\ndescription = "the lender\'s own"\nphrases = ["随借随还"]\n', encoding="utf-8"
    )
    assert messages.lint_state(settings)[0] is not matcher
    other = tmp_path / "templates" / "overdue_gentle.zh-CN.txt"
    other.write_text(other.read_text("utf-8").rstrip("\n") + "随借随还\n", encoding="utf-8")
    assert ("overdue_gentle", "zh-CN") in messages.lint_state(settings)[1]
    # What a caller does with the answer does not change what is remembered.
    messages.lint_state(settings)[1].clear()
    assert messages.lint_state(settings)[1] == messages.failing_templates(settings)
