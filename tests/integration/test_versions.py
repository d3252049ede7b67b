"""Four eyes on the wording: a draft never reaches the plan; a second person approves it; the
lint stops a bad one at both steps; every version is kept and can be restored."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from cuikuan.errors import InputError
from cuikuan.services.audit import entries
from cuikuan.services.messages import shipped_templates_dir, templates_dir
from cuikuan.services.planner import make_plan
from cuikuan.services.versions import (
    approve,
    propose_strategy,
    propose_template,
    reject,
    restore,
    versions,
)
from cuikuan.settings import Settings
from tests.integration.conftest import DAY

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)
NAME = "overdue_firm.zh-CN.txt"
NEW_LINE = "{{ signature }}{{ customer.honorific }}，您{{ loan.masked }}的借款已逾期{{ dpd }}天，请今天联系我们。"


def _texts(settings: Settings, engine: Engine, template: str) -> set[str]:
    found = make_plan(engine, settings, DAY, dry_run=True).candidates
    assert found is not None
    return set(found.filter(found["template"] == template)["text"].drop_nulls().to_list())


def test_a_change_reaches_the_plan_only_once_someone_else_approves_it(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    original = (shipped_templates_dir() / NAME).read_text("utf-8")
    head, _, _ = original.rpartition("---\n")
    changed = head + "---\n" + NEW_LINE + "\n"
    before = _texts(settings, engine, "overdue_firm")
    assert before and not any("请今天联系我们" in t for t in before)

    draft = propose_template(engine, settings, NAME, changed, "user:sam", NOW)
    assert _texts(settings, engine, "overdue_firm") == before  # a draft changes nothing
    with pytest.raises(InputError, match="other than its author"):
        approve(engine, settings, draft, "user:sam", NOW)
    written = approve(engine, settings, draft, "user:cara", NOW + timedelta(minutes=5))
    assert written == templates_dir(settings) / NAME != shipped_templates_dir() / NAME
    assert (shipped_templates_dir() / NAME).read_text("utf-8") == original  # the package untouched
    assert all("请今天联系我们" in t for t in _texts(settings, engine, "overdue_firm"))

    kept = versions(engine, NAME)
    assert [(v.state, v.author) for v in kept] == [
        ("superseded", "folder"),  # newest record first: the folder's text, kept on approval
        ("approved", "user:sam"),
    ]
    assert kept[0].content == original
    # Restoring is a new draft of the old text, approved like any other.
    back = restore(engine, settings, kept[0].id, "user:sam", NOW + timedelta(hours=1))
    approve(engine, settings, back, "user:cara", NOW + timedelta(hours=2))
    assert written.read_text("utf-8") == original
    assert [v.state for v in versions(engine, NAME)] == ["approved", "superseded", "superseded"]
    actions = [e["action"] for e in entries(engine) if e["action"].startswith("template.")]
    assert actions == [
        "template.propose",
        "template.approve",
        "template.propose",
        "template.approve",
    ]


def test_banned_wording_is_stopped_when_proposed_and_a_draft_can_be_rejected(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    original = (shipped_templates_dir() / NAME).read_text("utf-8")
    threat = original.rstrip("\n") + "不还就通知你家人。\n"
    with pytest.raises(InputError, match="the check stops it"):
        propose_template(engine, settings, NAME, threat, "user:sam", NOW)
    assert versions(engine) == []
    for hostile in ("../cuikuan.toml", "x/../../etc.txt", ".hidden.txt"):
        with pytest.raises(InputError, match="template file name"):
            propose_template(engine, settings, hostile, original, "user:sam", NOW)
    draft = propose_template(engine, settings, NAME, original + "\n", "user:sam", NOW)
    reject(engine, draft, "user:cara", NOW, note="no change")
    with pytest.raises(InputError, match="rejected, not a draft"):
        approve(engine, settings, draft, "user:cara", NOW)
    assert not Path(settings.path(settings.templates.dir)).exists()  # nothing written


def test_a_strategy_change_waits_for_a_second_person_and_a_broken_one_is_stopped(
    book: tuple[Settings, Engine],
) -> None:
    """The plan runs the approved strategy only: a draft that holds everyone back in a step
    changes nothing until approved; one with a share of 7 held back is stopped at proposal, with
    the file, line and field."""
    from cuikuan.services.strategy_file import shipped_strategy_text

    settings, engine = book
    shipped = shipped_strategy_text()

    def held() -> int:
        found = make_plan(engine, settings, DAY, dry_run=True).candidates
        assert found is not None
        return int((found["status"] == "held").sum())

    before = held()
    everyone = shipped.replace("control = 0.10", "control = 0.90")
    assert everyone != shipped
    draft = propose_strategy(engine, settings, everyone, "user:sam", NOW)
    assert held() == before
    with pytest.raises(InputError, match="other than its author"):
        approve(engine, settings, draft, "user:sam", NOW)
    approve(engine, settings, draft, "user:cara", NOW)
    assert held() > before
    kept = versions(engine, kind="strategy")
    assert [(v.state, v.author) for v in kept] == [
        ("superseded", "folder"),
        ("approved", "user:sam"),
    ]
    assert kept[0].content == shipped  # the shipped strategy it replaced, restorable
    broken = shipped.replace("control = 0.10", "control = 7", 1)  # a share must be below 1
    with pytest.raises(InputError, match=r"strategy\.toml \(draft\):\d+: steps\.\d+\."):
        propose_strategy(engine, settings, broken, "user:sam", NOW)


def test_a_policy_change_waits_for_a_second_person_and_touches_only_its_table(
    book: tuple[Settings, Engine],
) -> None:
    """A draft of [policy] leaves the settings file alone; a broken one is stopped naming its
    line and field; approving rewrites that table and nothing else; the old table is kept and
    can be restored. The plan (a process started after) runs the approved policy."""
    import tomllib

    from cuikuan.services.policy_file import policy_section
    from cuikuan.services.versions import propose_policy
    from cuikuan.settings import load_settings

    settings, engine = book
    assert settings.source is not None
    file_before = settings.source.read_text("utf-8")
    old_section = policy_section(settings)

    def earliest(s: Settings) -> str:
        """The earliest local send time of the day's planned messages."""
        found = make_plan(engine, s, DAY, dry_run=True).candidates
        assert found is not None
        at = found.filter(found["status"] == "planned")["earliest_at"]
        return str(min(t.astimezone(ZoneInfo("Asia/Shanghai")) for t in at).strftime("%H:%M"))

    before = earliest(settings)
    assert before < "19:00"
    with pytest.raises(InputError, match=r"\[policy\] \(draft\):3: policy\.window_start"):
        propose_policy(engine, settings, '[policy]\njurisdiction = "cn"\nwindow_start = "25:00"\n',
                       "user:sam", NOW)  # fmt: skip
    with pytest.raises(InputError, match=r"only the \[policy\] table"):
        propose_policy(engine, settings, "[policy]\n[smpp]\nport = 1\n", "user:sam", NOW)
    with pytest.raises(InputError, match=r"max_per_typo"):
        propose_policy(engine, settings, "[policy]\nmax_per_typo = 1\n", "user:sam", NOW)
    # Half a window: the other half is the pack's, and 22:00 is after its 21:00 end.
    with pytest.raises(InputError, match=r"window_start \(22:00\) must be before .*cn pack's"):
        propose_policy(engine, settings, '[policy]\nwindow_start = "22:00"\n', "user:sam", NOW)
    with pytest.raises(InputError, match=r"policy\.max_per_day"):
        propose_policy(engine, settings, "[policy]\nmax_per_day = 0\n", "user:sam", NOW)

    evening = '[policy]\njurisdiction = "cn"\nwindow_start = "19:00"  # after work\n'
    draft = propose_policy(engine, settings, evening, "user:sam", NOW)
    assert settings.source.read_text("utf-8") == file_before  # a draft changes nothing
    with pytest.raises(InputError, match="other than its author"):
        approve(engine, settings, draft, "user:sam", NOW)
    approve(engine, settings, draft, "user:cara", NOW)
    after = load_settings(settings.source)
    assert after.policy.window_start == "19:00" and earliest(after) == "19:00"
    old, new = tomllib.loads(file_before), tomllib.loads(settings.source.read_text("utf-8"))
    assert {k: v for k, v in new.items() if k != "policy"} == {
        k: v for k, v in old.items() if k != "policy"
    }
    kept = versions(engine, kind="policy")
    assert [(v.state, v.author) for v in kept] == [
        ("superseded", "folder"),
        ("approved", "user:sam"),
    ]
    assert kept[0].content == old_section
    again = restore(engine, settings, kept[0].id, "user:cara", NOW)
    approve(engine, after, again, "user:sam", NOW)
    assert earliest(load_settings(settings.source)) == before
    assert tomllib.loads(settings.source.read_text("utf-8")) == old


def test_a_running_server_and_worker_take_an_approved_policy_without_a_restart(
    book: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve` and `worker` run for days: the policy approved in the console (which rewrites the
    settings file) governs their next request and tick, not the next restart."""
    from cuikuan.api.app import create_app
    from cuikuan.services import worker
    from cuikuan.services.versions import propose_policy
    from cuikuan.settings import SettingsWatch

    settings, engine = book
    app = create_app(engine, settings, lambda: NOW, "", SettingsWatch(settings))
    seen: list[str | None] = []

    class Stop(Exception):
        pass

    def plan_due(_engine: Engine, current: Settings, _now: datetime) -> None:
        seen.append(current.policy.window_start)
        raise Stop

    monkeypatch.setattr(worker, "plan_due", plan_due)
    day = worker.WorkerDay(engine, settings, lambda name: None, {}, lambda *a: None,  # type: ignore[arg-type,return-value]
                           watch=SettingsWatch(settings))  # fmt: skip
    with pytest.raises(Stop):
        day.tick(NOW)
    assert app.state.cuikuan.settings.policy.window_start is None and seen == [None]
    evening = '[policy]\njurisdiction = "cn"\nwindow_start = "19:00"\n'
    approve(engine, settings, propose_policy(engine, settings, evening, "user:sam", NOW),
            "user:cara", NOW)  # fmt: skip
    assert settings.source is not None
    os.utime(settings.source, ns=(1, 2))  # a stamp of its own, however fast the test runs
    with pytest.raises(Stop):
        day.tick(NOW)
    assert seen == [None, "19:00"]
    assert app.state.cuikuan.settings.policy.window_start == "19:00"
