"""The scenario suite: small books in the cn, us and eu packs driven day by day through the
command line, every message the gateway accepted judged by an independent checker.

It must find no violation; and switching each rule off must make it find some (the checker
can fail)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cuikuan.dispatch import recheck
from cuikuan.domain import send_rules
from tests.scenarios.checker import check
from tests.scenarios.driver import run
from tests.scenarios.world import PACKS


@pytest.mark.parametrize("seed", [7, 11])
@pytest.mark.parametrize("pack", ["cn", "us", "eu"])
def test_no_message_breaks_a_contact_rule(pack: str, seed: int, tmp_path: Path) -> None:
    world, sent = run(PACKS[pack], tmp_path, seed=seed)
    assert len(sent) >= 40, "the scenario must send enough to judge"
    assert any(kind == "stop" for _, _, kind, _ in world.replies)
    verdict = check(world, sent)
    assert not verdict.violations, (dict(verdict.violations), verdict.examples)


def _ignoring(field: str, value: object) -> Callable[[pytest.MonkeyPatch], None]:
    """A switch that makes the send-time re-check blind to one fact (set to `value`)."""

    def switch(monkeypatch: pytest.MonkeyPatch) -> None:
        real = send_rules.suppressed_reason

        def without(facts: send_rules.RowFacts) -> str | None:
            return real(facts._replace(**{field: value}))  # type: ignore[arg-type]

        monkeypatch.setattr(send_rules, "suppressed_reason", without)

    return switch


def _no_record_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recheck, "_on_record", lambda *a: True)


def _no_paid_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(send_rules, "_paid_reason", lambda facts: None)


Switch = Callable[[pytest.MonkeyPatch], None]
NO_WINDOW = {"CUIKUAN_POLICY__WINDOW_START": "00:00", "CUIKUAN_POLICY__WINDOW_END": "23:59"}
NO_CAPS = {"CUIKUAN_POLICY__MAX_PER_DAY": "9", "CUIKUAN_POLICY__MAX_PER_7_DAYS": "50",
           "CUIKUAN_POLICY__MIN_GAP_HOURS": "0"}  # fmt: skip
OFF: dict[str, tuple[Switch | None, dict[str, str], tuple[str, ...]]] = {
    "window": (None, NO_WINDOW, ("window",)),
    "caps": (None, NO_CAPS, ("cap_day", "cap_week", "cap_gap")),
    "opt_out": (_ignoring("number_stop", None), {}, ("opt_out", "wrong_number")),
    "person_stop": (_ignoring("flags", []), {}, ("person_stop",)),
    "recipient_on_record": (_no_record_check, {}, ("recipient_on_record",)),
    "paid": (_no_paid_check, {}, ("paid",)),
    "promise": (_ignoring("promise_pending", False), {}, ("promise",)),
}


@pytest.mark.parametrize("rule", sorted(OFF))
def test_the_checker_finds_violations_when_a_rule_is_off(
    rule: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    switch, env, expected = OFF[rule]
    if switch is not None:
        switch(monkeypatch)
    world, sent = run(PACKS["cn" if rule != "window" else "us"], tmp_path, seed=7, extra=env)
    verdict = check(world, sent)
    found: Any = {k: v for k, v in verdict.violations.items() if k in expected}
    assert found, (rule, dict(verdict.violations))
