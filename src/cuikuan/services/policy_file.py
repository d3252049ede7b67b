"""The contact policy as text: the `[policy]` table of the settings file, read and checked the
way the next process will load it (a draft before four eyes approve it: services/versions).

    text = policy_section(settings)                 # "[policy]\njurisdiction = ..."
    check_policy_text(settings, text, Path("cuikuan.toml [policy] (draft)"))  # ConfigError
    whole = settings_with_policy(settings, text)   # the settings file with it in place
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from cuikuan.config_files import describe, replace_table, table_text
from cuikuan.errors import ConfigError
from cuikuan.settings import Policy, Settings, default_settings_text

TABLE = "policy"


class _PolicyOnly(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: Policy = Policy()


def settings_text(settings: Settings) -> str:
    """The settings file as it stands (the shipped defaults when there is no file)."""
    source = settings.source
    if source is not None and source.is_file():
        return source.read_text("utf-8-sig")
    return default_settings_text()


def policy_section(settings: Settings) -> str:
    return table_text(settings_text(settings), TABLE) or "[policy]\n"


def check_policy_text(settings: Settings, text: str, shown: Path) -> Policy:
    """The table checked as loading the settings checks it (file, line and field), then the
    settings file with it in place, and the contact policy built from it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{shown}: not valid TOML: {exc}") from None
    if set(data) - {TABLE}:
        others = ", ".join(sorted(set(data) - {TABLE}))
        raise ConfigError(f"{shown}: only the [policy] table belongs here, not {others}")
    try:
        policy = _PolicyOnly.model_validate(data).policy
    except ValidationError as exc:
        raise ConfigError(describe(exc, shown, text)) from None
    whole = settings_with_policy(settings, text)
    try:
        Settings.model_validate(tomllib.loads(whole))
    except ValidationError as exc:
        raise ConfigError(describe(exc, settings.source or Path("cuikuan.toml"), whole)) from None
    try:
        policy.contact_policy()
    except ValueError as exc:
        raise ConfigError(f"{shown}: {exc}") from None
    return policy


def settings_with_policy(settings: Settings, text: str) -> str:
    return replace_table(settings_text(settings), TABLE, text)


def effective_policy(settings: Settings) -> dict[str, object]:
    """The contact policy's values as the plan applies them: the pack's, with the settings'."""
    p = settings.policy
    c = p.contact_policy()
    return {
        "jurisdiction": p.jurisdiction,
        "window": f"{c.window_start:%H:%M}-{c.window_end:%H:%M}",
        "max_per_day": c.max_per_day,
        "max_per_7_days": c.max_per_7_days,
        "min_gap_hours": c.min_gap.total_seconds() / 3600,
        "holiday_calendar": c.holiday_calendar,
        "require_opt_out": p.opt_out_required,
        "opt_out_confirmation": p.confirms_opt_out,
        "debt_collector": p.debt_collector,
        "unknown_holidays": p.unknown_holidays,
        "declared_zone_only": p.declared_zone_only,
    }
