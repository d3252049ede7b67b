"""Load the strategy file, validated against the settings' buckets and the templates on disk."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from cuikuan.config_files import describe, locate_keys, read_toml
from cuikuan.domain.strategy import Strategy, check_buckets
from cuikuan.errors import ConfigError
from cuikuan.services.messages import load_templates, templates_dir
from cuikuan.settings import Settings


def shipped_strategy_text() -> str:
    return resources.files("cuikuan.resources").joinpath("strategy.toml").read_text("utf-8")


def strategy_path(settings: Settings) -> Path | None:
    path = settings.path(settings.plan.strategy)
    return path if path.is_file() else None


def load_strategy(settings: Settings) -> Strategy:
    """The settings' strategy file (the shipped default when there is none); ConfigError names
    file, line and field for anything wrong, including templates that do not exist."""
    path = strategy_path(settings)
    if path is None:
        data, text, shown = (
            tomllib.loads(shipped_strategy_text()),
            shipped_strategy_text(),
            Path("strategy.toml (default)"),
        )
    else:
        data, text = read_toml(path)
        shown = path
    return _checked(settings, data, text, shown)


def check_strategy_text(settings: Settings, text: str, shown: Path) -> Strategy:
    """A strategy's text checked exactly as the file is when the plan loads it (a draft before
    it is approved: services/versions)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{shown}: not valid TOML: {exc}") from None
    return _checked(settings, data, text, shown)


def _checked(settings: Settings, data: dict[str, object], text: str, shown: Path) -> Strategy:
    try:
        strategy = Strategy.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc, shown, text)) from None
    lines = locate_keys(text)
    problems = [
        f"{shown}:{lines.get(('steps', str(i), 'bucket'), 1)}: steps.{i}.bucket: {message}"
        for i, message in check_buckets(strategy, [b.name for b in settings.ledger.buckets])
    ]
    problems += _missing_templates(settings, strategy, shown, lines)
    if problems:
        raise ConfigError("\n".join(problems))
    return strategy


def _missing_templates(
    settings: Settings, strategy: Strategy, shown: Path, lines: dict[tuple[str, ...], int]
) -> list[str]:
    templates, _ = load_templates(templates_dir(settings))
    have = {(t.name, t.locale) for t in templates}
    out = []
    for i, step in enumerate(strategy.steps):
        key = ("steps", str(i), "template") if step.template else ("steps", str(i), "variants")
        for name in step.templates():
            for locale in settings.templates.locales:
                if (name, locale) not in have:
                    out.append(
                        f"{shown}:{lines.get(key, lines.get(('steps', str(i)), 1))}: steps.{i}.{key[-1]}: no template {name!r} in {locale}"
                    )
    return out
