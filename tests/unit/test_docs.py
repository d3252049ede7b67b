"""Docs that would rot if nobody checked: the column mapping and the command list."""

from pathlib import Path

from cuikuan.domain.columns import mapping_table

ROOT = Path(__file__).resolve().parents[2]


def test_the_documented_column_mapping_is_the_one_in_the_code() -> None:
    text = (ROOT / "docs" / "import.md").read_text(encoding="utf-8")
    documented = text.split("<!-- mapping:start -->\n")[1].split("\n<!-- mapping:end -->")[0]
    assert documented == mapping_table(), (
        "regenerate with: python -c 'from cuikuan.domain.columns import mapping_table; print(mapping_table())'"
    )


def test_every_command_is_in_the_readme() -> None:
    from cuikuan.cli.app import build

    app = build()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    for name in names:
        assert f"cuikuan {name}" in readme, name


def test_each_command_loads_from_the_module_the_table_names() -> None:
    """`cuikuan X` imports only X's module: the table saying where X lives must be right, and
    every command a module registers must be in it."""
    from cuikuan.cli.app import COMMANDS, GROUPS, build, command_named

    everything = build()
    assert {c.name for c in everything.registered_commands} == set(COMMANDS)
    assert {g.name for g in everything.registered_groups} == set(GROUPS)
    for name in [*COMMANDS, *GROUPS]:
        alone = build(name)
        names = [c.name for c in alone.registered_commands] + [
            g.name for g in alone.registered_groups
        ]
        assert name in names
    assert command_named(["--config", "x.toml", "import", "f.csv"]) == "import"
    assert command_named(["--config=x.toml", "sim", "generate"]) == "sim"
    assert command_named(["--version"]) is None
