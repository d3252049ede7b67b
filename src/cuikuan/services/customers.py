"""Finding customers: by external id (exact), the start of a name, a phone number in any usual
spelling, or a loan's external id. The API's search and the console's search call this.

    rows = find_customers(engine, "CN", q="张", after=0, limit=50)    # [(id, external_id, name)]
"""

from __future__ import annotations

from sqlalchemy import Engine, select

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
        by_loan = select(loans.c.customer_id).where(loans.c.external_id == q)
        query = query.where(
            (customers.c.external_id == q)
            | customers.c.name.startswith(q, autoescape=True)
            | customers.c.id.in_(by_loan)
        )
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
