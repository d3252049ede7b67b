"""Finding customers: by external id (exact), the start of a name (letters of any case), a
phone number in any usual spelling, or a loan's external id. The API's search and the console's
search call this. Each way is served by an index (ix_customers_name_prefix for names), so a
search costs the same on a book of a million as on one of a thousand.

    rows = find_customers(engine, "CN", q="张", after=0, limit=50)    # [(id, external_id, name)]
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Engine, func, literal, select, union

from cuikuan.domain.phones import normalise_phone
from cuikuan.errors import InputError
from cuikuan.store.schema import customer_phones, customers, loans


def find_customers(
    engine: Engine,
    region: str,
    q: str | None = None,
    phone: str | None = None,
    after: int = 0,
    limit: int = 50,
) -> list[tuple[int, str, str]]:
    """Up to `limit` + 1 matches after id `after`, in id order (the extra one says "more")."""
    query = select(customers.c.id, customers.c.external_id, customers.c.name).where(
        customers.c.id > after
    )
    if q:
        # A union of three indexed lookups: an OR of them makes the databases scan the book.
        matches = union(
            select(customers.c.id).where(customers.c.external_id == q),
            select(customers.c.id).where(name_starts(engine, q)),
            select(loans.c.customer_id).where(loans.c.external_id == q),
        ).subquery()
        query = query.where(customers.c.id.in_(select(matches.c[0])))
    if phone:
        try:
            e164, _ = normalise_phone(phone, region)
        except ValueError as exc:
            raise InputError(f"phone: {exc}") from None
        query = query.where(
            customers.c.id.in_(
                select(customer_phones.c.customer_id).where(customer_phones.c.e164 == e164)
            )
        )
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(customers.c.id).limit(limit + 1)).all()
    return [(r.id, r.external_id, r.name) for r in rows]


# Above every code point a name can hold: lower(name) in [p, p + TOP) is "starts with p".
TOP = "\U0010ffff"


def name_starts(engine: Engine, prefix: str) -> ColumnElement[bool]:
    """lower(name) starts with lower(prefix), folded by the database on both sides, in the form
    its index serves: SQLite a range (its LIKE uses no index), PostgreSQL LIKE (text_pattern_ops)."""
    folded = func.lower(customers.c.name)
    wanted = func.lower(literal(prefix))
    if engine.dialect.name == "sqlite":
        return (folded >= wanted) & (folded < wanted.concat(TOP))
    escaped = prefix.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return folded.like(func.lower(literal(escaped + "%")), escape="/")
