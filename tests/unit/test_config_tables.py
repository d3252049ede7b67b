"""Replacing one table of a settings file keeps every other line and value as it was."""

from __future__ import annotations

import tomllib

from hypothesis import given, settings
from hypothesis import strategies as st

from cuikuan.config_files import replace_table, table_text
from cuikuan.settings import default_settings_text

names = st.sampled_from(["alpha", "beta", "smpp", "policy_x", "templates", "plan"])
keys = st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True)
values = st.one_of(
    st.integers(-1000, 1000), st.booleans(), st.text("abc #[]=", max_size=6),
    st.lists(st.integers(0, 9), max_size=3),
)  # fmt: skip
tables = st.dictionaries(keys, values, max_size=4)


def render(name: str, table: dict[str, object], comment: bool) -> str:
    lines = [f"[{name}]"] + [f"{k} = {_value(v)}" for k, v in table.items()]
    if comment:
        lines.append("# a comment that belongs to the table")
    return "\n".join(lines) + "\n"


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, list):
        return "[" + ", ".join(str(i) for i in v) + "]"
    return str(v)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(names, tables, st.booleans()), max_size=4, unique_by=lambda t: t[0]),
    st.integers(0, 4),
    st.one_of(st.none(), tables),
    tables,
)
def test_replacing_a_table_changes_that_table_only(
    others: list[tuple[str, dict[str, object], bool]],
    where: int,
    old: dict[str, object] | None,
    new: dict[str, object],
) -> None:
    parts = [render(n, t, c) for n, t, c in others]
    if old is not None:
        parts.insert(min(where, len(parts)), render("policy", old, True))
    text = "\n".join(parts)
    section = render("policy", new, False)
    result = replace_table(text, "policy", section)
    expected = tomllib.loads(text)
    expected["policy"] = new
    assert tomllib.loads(result) == expected
    assert table_text(result, "policy") == section
    for part in parts:  # every other table's lines, comments included, as they were
        if not part.startswith("[policy]"):
            assert part in result


def test_the_shipped_settings_keep_their_comments_around_the_policy() -> None:
    text = default_settings_text()
    result = replace_table(text, "policy", '[policy]\njurisdiction = "us"\n')
    assert result.count("\n[templates]") == 1
    assert "# One file per template and locale" in result
    assert "# Contact rules pack" not in result  # the table's own comments went with it
