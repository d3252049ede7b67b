"""The inbound PDU journal in the database: what the SMPP binds heard, before it is acknowledged.

StoredJournal(engine).keep("cmcc", arrivals)      # one transaction; raises if not stored
rows = waiting(conn, "cmcc", limit=5000)          # [(id, Arrival)], oldest first
settle(conn, {id: ("done", "receipt for message 12")})   # False if another reader was first
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, Engine, func, select, update

from cuikuan.channels.smpp.inbound import Arrival, reading
from cuikuan.channels.smpp.receipts import canonical_id
from cuikuan.store.among import among
from cuikuan.store.bulk import Bulk
from cuikuan.store.schema import inbound_pdus
from cuikuan.store.times import as_utc


class StoredJournal:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def keep(self, provider: str, arrivals: Sequence[Arrival]) -> None:
        """One transaction, the driver's executemany on plain tuples: a busy bind hears
        thousands of receipts a second, and the SMSC waits for this before its answer.
        A final receipt is read here and stored as a receipt along with its PDU, which is kept
        already read; the dispatcher then stamps it with its own clock and matches it
        (dispatch.receipts.match_waiting). Replies
        and anything unreadable stay `new` for the reader (dispatch.inbound)."""
        if not arrivals:
            return
        pdus, found = [], []
        with self.engine.begin() as conn:
            bulk = Bulk(conn)
            for a in arrivals:
                at = bulk.at(a.at)
                what = reading(a)
                state, note = ("new", None)
                if what.receipt is not None:
                    r = what.receipt
                    state, note = "done", "receipt"
                    found.append((provider, canonical_id(r.provider_id), r.outcome, r.detail))
                elif what.skipped is not None:
                    state, note = "done", what.skipped
                pdus.append((provider, a.session[:64], a.command_id, a.body, at, state, note))
            bulk.many(
                "INSERT INTO inbound_pdus"
                " (provider, session, command_id, body, arrived_at, state, note)"
                f" VALUES ({bulk.placeholders(7)})",
                pdus,
            )
            bulk.many(
                "INSERT INTO receipts (provider, provider_id, outcome, detail)"
                f" VALUES ({bulk.placeholders(4)})",
                found,
            )


def waiting(conn: Connection, provider: str, limit: int) -> list[tuple[int, Arrival]]:
    rows = conn.execute(
        select(
            inbound_pdus.c.id, inbound_pdus.c.session, inbound_pdus.c.command_id,
            inbound_pdus.c.body, inbound_pdus.c.arrived_at,
        )
        .where(inbound_pdus.c.provider == provider, inbound_pdus.c.state == "new")
        .order_by(inbound_pdus.c.id)
        .limit(limit)
    ).all()  # fmt: skip
    return [
        (r.id, Arrival(r.session, int(r.command_id), bytes(r.body), as_utc(r.arrived_at)))
        for r in rows
    ]


def settle(conn: Connection, outcomes: Mapping[int, tuple[str, str]]) -> bool:
    """Mark rows read (state, note). False when some were no longer new: another process read
    them first, and the caller must roll back what it did with them."""
    ids = sorted(outcomes)
    changed = 0
    for state, note in {v for v in outcomes.values()}:
        chosen = [i for i in ids if outcomes[i] == (state, note)]
        for start in range(0, len(chosen), 500):
            changed += conn.execute(
                update(inbound_pdus)
                .where(among(inbound_pdus.c.id, chosen[start : start + 500]), inbound_pdus.c.state == "new")
                .values(state=state, note=note)
            ).rowcount  # fmt: skip
    return changed == len(ids)


def counts(conn: Connection) -> dict[tuple[str, str], int]:
    """(provider, state) -> rows: what is still waiting to be read, and what could not be."""
    rows = conn.execute(
        select(inbound_pdus.c.provider, inbound_pdus.c.state, func.count()).group_by(
            inbound_pdus.c.provider, inbound_pdus.c.state
        )
    ).all()
    return {(r[0], r[1]): int(r[2]) for r in rows}
