from pathlib import Path

import pytest

from cuikuan.config_files import locate_keys
from cuikuan.errors import ConfigError
from cuikuan.settings import default_settings_text, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cuikuan.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_file_loads_with_its_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, default_settings_text()), environ={})
    assert settings.lender.signature == "【富勤金融】"
    assert settings.defaults.currency == "CNY"
    assert [b.name for b in settings.ledger.buckets] == ["current", "M1", "M2", "M3", "M3+"]
    assert settings.database_url == f"sqlite:///{(tmp_path / 'cuikuan.db').resolve()}"


def test_a_bad_value_is_reported_with_file_line_and_field(tmp_path: Path) -> None:
    text = default_settings_text().replace(
        'timezone = "Asia/Shanghai"', 'timezone = "Asia/Shangai"'
    )
    path = write(tmp_path, text)
    line = text.splitlines().index('timezone = "Asia/Shangai"') + 1
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert f"{path}:{line}: defaults.timezone: " in info.value.message
    assert "IANA time zone" in info.value.message


def test_a_misspelt_key_is_named(tmp_path: Path) -> None:
    text = default_settings_text().replace("grace_days = 0", "grace_dayz = 0")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"cuikuan.toml:\d+: ledger.grace_dayz: Extra inputs"):
        load_settings(path, environ={})


def test_a_bad_bucket_in_an_array_is_located(tmp_path: Path) -> None:
    text = default_settings_text().replace("max_dpd = 60", "max_dpd = -60")
    path = write(tmp_path, text)
    line = text.splitlines().index("max_dpd = -60") + 1
    with pytest.raises(ConfigError, match=rf":{line}: ledger.buckets.2.max_dpd"):
        load_settings(path, environ={})


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[lender]\nname = "x"\nsignature = \n')
    with pytest.raises(ConfigError, match=r"cuikuan.toml:3: not valid TOML"):
        load_settings(path, environ={})


def test_environment_overrides_the_file_and_is_named_when_wrong(tmp_path: Path) -> None:
    path = write(tmp_path, default_settings_text())
    settings = load_settings(
        path, environ={"CUIKUAN_LENDER__HOTLINE": "95555", "CUIKUAN_LEDGER__GRACE_DAYS": "3"}
    )
    assert settings.lender.hotline == "95555"
    assert settings.ledger.grace_days == 3
    with pytest.raises(
        ConfigError, match=r"environment CUIKUAN_DEFAULTS__CURRENCY: defaults\.currency"
    ):
        load_settings(path, environ={"CUIKUAN_DEFAULTS__CURRENCY": "XXY"})


def test_key_locator_follows_tables_and_arrays() -> None:
    found = locate_keys("[a]\nx = 1\n[[b]]\ny = 2\n[[b]]\ny = 3\n")
    assert found[("a", "x")] == 2
    assert found[("b", "1", "y")] == 6


def test_policy_overrides_and_their_errors(tmp_path: Path) -> None:
    text = default_settings_text().replace(
        "debt_collector = false",
        'debt_collector = false\nwindow_start = "09:00"\nmax_per_7_days = 2',
    )
    policy = load_settings(write(tmp_path, text), environ={}).policy.contact_policy()
    assert (
        policy.window_start.hour,
        policy.window_end.hour,
        policy.max_per_day,
        policy.max_per_7_days,
    ) == (9, 21, 1, 2)
    bad = default_settings_text().replace(
        "debt_collector = false", 'debt_collector = false\nwindow_end = "25:00"\nmax_per_day = -1'
    )
    path = write(tmp_path, bad)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    lines = bad.splitlines()
    window_line = lines.index('window_end = "25:00"') + 1
    cap_line = lines.index("max_per_day = -1") + 1
    assert f":{window_line}: policy.window_end: expected a time of day" in info.value.message
    assert f":{cap_line}: policy.max_per_day: " in info.value.message


def test_a_named_provider_is_checked_by_its_kind_and_located(tmp_path: Path) -> None:
    good = default_settings_text() + '\n[providers.cmcc]\nkind = "smpp"\nport = 2776\n'
    settings = load_settings(write(tmp_path, good), environ={})
    assert settings.providers["cmcc"].kind == "smpp"
    bad = default_settings_text() + '\n[providers.cmcc]\nkind = "smpp"\nport = "x"\n'
    lines = bad.count("\n")
    with pytest.raises(ConfigError, match=rf"cuikuan.toml:{lines}: providers\.cmcc\.port: "):
        load_settings(write(tmp_path, bad), environ={})
    unknown = default_settings_text() + '\n[providers.x]\nkind = "pigeon"\n'
    with pytest.raises(ConfigError, match=r"providers\.x"):
        load_settings(write(tmp_path, unknown), environ={})


def test_a_watch_reads_the_file_again_only_when_it_changes_and_keeps_the_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What `serve` and `worker` hold: an approved policy (a rewritten file) is in force at the
    next read; a file broken meanwhile leaves the last good settings and says so; a new
    database url waits for a restart."""
    import os

    from cuikuan.settings import SettingsWatch

    path = write(tmp_path, default_settings_text())
    watch = SettingsWatch(load_settings(path, environ={}), environ={})
    first = watch.current()
    assert watch.current() is first  # unchanged: not read again
    evening = default_settings_text().replace('# window_start = "08:00"', 'window_start = "19:00"')
    assert evening != default_settings_text()
    path.write_text(evening, encoding="utf-8")
    os.utime(path, ns=(1, 2))  # a stamp of its own, however fast the test runs
    assert watch.current().policy.window_start == "19:00"
    path.write_text(evening.replace('"19:00"', '"25:00"'), encoding="utf-8")
    os.utime(path, ns=(3, 4))
    assert watch.current().policy.window_start == "19:00"  # the last good settings
    assert "cannot be read" in caplog.text and "window_start" in caplog.text
    moved = evening.replace('url = "sqlite:///cuikuan.db"', 'url = "sqlite:///elsewhere.db"')
    path.write_text(moved, encoding="utf-8")
    os.utime(path, ns=(5, 6))
    assert watch.current().database_url == first.database_url  # on restart only
