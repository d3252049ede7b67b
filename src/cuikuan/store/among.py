"""`column IN (these values)` as one bound parameter, whatever the number of values.

    conn.execute(select(loans.c.id).where(among(loans.c.id, ids)))

SQLAlchemy's `in_(list)` renders a placeholder a value at every execution (an "expanding"
parameter): on the dispatcher's path, thousands of ids a round, rendering those lists was about a
tenth of its time. Here the statement is the same whatever the values, so it is compiled once and
cached: on SQLite the values travel as one JSON array read by `json_each` (no bound-variable
limit either), on PostgreSQL as one array compared with `= ANY`.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any, cast

from sqlalchemy import BigInteger, Boolean, ColumnElement, Integer, String, Text, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator, TypeEngine


class _Ints(TypeDecorator[list[int]]):
    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return cast(TypeEngine[Any], dialect.type_descriptor(postgresql.ARRAY(BigInteger())))
        return cast(TypeEngine[Any], dialect.type_descriptor(String()))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return list(value) if dialect.name == "postgresql" else json.dumps(list(value))


class _Texts(_Ints):
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return cast(TypeEngine[Any], dialect.type_descriptor(postgresql.ARRAY(Text())))
        return cast(TypeEngine[Any], dialect.type_descriptor(String()))


class Among(ColumnElement[bool]):
    """The construct `among` returns; rendered per dialect below."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # rendered as is in WHERE, not as `(...) = 1`
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own declaration is a plain list)
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], values: BindParameter[Any]) -> None:
        self.column, self.values = column, values


def among_sql(sqlite: bool, column: str, placeholder: str) -> str:
    """The SQL both renderings share (this construct's, and Bulk's for text statements)."""
    if sqlite:
        return f"{column} IN (SELECT value FROM json_each({placeholder}))"
    return f"{column} = ANY({placeholder})"


@compiles(Among)
def _among(element: Among, compiler: Any, **kw: Any) -> str:
    return among_sql(
        compiler.dialect.name == "sqlite",
        compiler.process(element.column, **kw),
        compiler.process(element.values, **kw),
    )


def among(column: ColumnElement[Any], values: Collection[Any]) -> ColumnElement[bool]:
    """`column IN values`, bound as one parameter: an integer or a text column."""
    texts = not isinstance(column.type, Integer)
    return Among(column, bindparam(None, list(values), type_=_Texts() if texts else _Ints()))
