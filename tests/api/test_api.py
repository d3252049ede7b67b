"""The API over real HTTP: auth on every route, ledger batches equal to the file import,
all-or-nothing batches, idempotency, bounded bodies, the audit log, rate limits, callbacks."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import DBAPIError

from cuikuan.api.app import create_app
from cuikuan.api.auth import RateLimiter
from cuikuan.channels.twilio import signature
from cuikuan.services.api_keys import create_key
from cuikuan.services.importer import import_file
from cuikuan.settings import default_settings_text, load_settings
from cuikuan.sim.generator import GenerateOptions, generate
from cuikuan.store.engine import open_database
from cuikuan.store.schema import audit_log, payments
from tests.api.conftest import NOW, Served, first_number, serve
from tests.api.test_schema import DEFAULTS
from tests.helpers import RULES
from tests.integration.conftest import DAY

DOC = create_app(None, DEFAULTS, lambda: NOW).openapi()
NEEDS = {"post /api/v1/instalments": "ingest", "post /api/v1/payments": "ingest",
         "post /api/v1/imports": "ingest", "get /api/v1/problems/{kind}": ""}  # fmt: skip


def _routes() -> list[tuple[str, str, str]]:
    """(method, path with sample parameters, scope it needs) for every documented route."""
    out = []
    for path, methods in DOC["paths"].items():
        for method in methods:
            key = f"{method} {path}"
            needed = NEEDS.get(key, "read" if method == "get" else "operate")
            if path.endswith("/audit") or "/webhooks" in path or "/providers" in path:
                needed = "admin"
            sample = (path.replace("{customer}", "C00000001").replace("{task_id}", "1")
                      .replace("{message_id}", "1").replace("{flag}", "dispute")
                      .replace("{template}", "t").replace("{number}", "13800138000")
                      .replace("{kind}", "conflict").replace("{subscription}", "1")
                      .replace("{delivery}", "1").replace("{name}", "sandbox"))  # fmt: skip
            out.append((method, sample, needed))
    return out


def test_every_route_but_the_public_ones_needs_a_key_with_its_scope(served: Served) -> None:
    wrong = {"read": "operate", "operate": "read", "ingest": "read", "admin": "read"}
    checked = 0
    for method, path, needed in _routes():
        if not needed:
            continue
        anonymous = served.client("").request(method, path, json={})
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.headers["content-type"] == "application/problem+json"
        assert anonymous.json()["type"] == "/api/v1/problems/unauthorized"
        forged = httpx.request(method, served.url + path, json={},
                               headers={"Authorization": "Bearer ck_00000000_forged"})  # fmt: skip
        assert forged.status_code == 401, (method, path)
        lacking = served.client(wrong[needed]).request(method, path, json={})
        assert lacking.status_code == 403, (method, path, lacking.text)
        assert lacking.json()["needed"] == needed
        checked += 1
    assert checked >= 20


def _ledger_rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _book(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The ledger as the lender sees it: external ids, names, amounts and dates, no row ids."""
    queries = {
        "customers": "SELECT external_id, name, email, timezone, flags FROM customers",
        "phones": "SELECT c.external_id, p.e164, p.position FROM customer_phones p "
                  "JOIN customers c ON c.id = p.customer_id",
        "loans": "SELECT l.external_id, c.external_id, l.currency FROM loans l "
                 "JOIN customers c ON c.id = l.customer_id",
        "instalments": "SELECT l.external_id, i.number, i.due_date, i.amount_due, i.amount_paid "
                       "FROM instalments i JOIN loans l ON l.id = i.loan_id",
    }  # fmt: skip
    with engine.connect() as conn:
        return {
            k: sorted(tuple(v.isoformat() if isinstance(v, date) else v for v in r)
                      for r in conn.execute(text(q)))
            for k, q in queries.items()
        }  # fmt: skip


@pytest.fixture
def empty(tmp_path: Path, db_url: str) -> Iterator[Served]:
    """A server over an empty book."""
    (tmp_path / "cuikuan.toml").write_text(
        default_settings_text().replace('url = "sqlite:///cuikuan.db"', f'url = "{db_url}"'),
        encoding="utf-8",
    )
    settings = load_settings(tmp_path / "cuikuan.toml", environ={})
    engine = open_database(settings.database_url)
    yield from serve(engine, settings)
    engine.dispose()


@pytest.mark.parametrize("clients", [1, 3])
def test_batches_through_the_api_make_the_same_book_as_the_file_import(
    empty: Served, tmp_path: Path, clients: int
) -> None:
    """Batches are cut at loan boundaries, as a lender's system sends a loan whole; from one
    client in turn, or from three at once (their checks run side by side, their writes queue)."""
    ledger = tmp_path / "ledger.csv"
    generate(GenerateOptions(90, 23, DAY, ledger))
    rows = _ledger_rows(ledger)
    by_loan: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_loan.setdefault(row["借据号"], []).append(row)
    batches: list[list[dict[str, Any]]] = [[]]
    for loan_rows in by_loan.values():
        if len(batches[-1]) >= 100:
            batches.append([])
        batches[-1] += loan_rows

    def post_all(mine: list[list[dict[str, Any]]]) -> None:
        with empty.client("ingest") as client:
            for batch in mine:
                answer = client.post(
                    "/api/v1/instalments", json={"rows": batch, "snapshot_at": NOW.isoformat()}
                )
                assert answer.status_code == 201, answer.text
                assert answer.json()["rows"] == len(batch)

    with ThreadPoolExecutor(clients) as pool:
        for done in [pool.submit(post_all, batches[i::clients]) for i in range(clients)]:
            done.result()
    reference = open_database(f"sqlite:///{tmp_path / 'reference.db'}")
    import_file(reference, ledger, RULES, snapshot_at=NOW, now=NOW)
    assert _book(empty.engine) == _book(reference)


def test_a_batch_with_bad_rows_is_refused_whole_with_every_row_and_field(empty: Served) -> None:
    good = {"客户编号": "C1", "姓名": "张三", "手机号": "13800138000", "借据号": "L1", "期数": "1",
            "应还日期": "2026-12-01", "应还金额": "100.00"}  # fmt: skip
    rows = [
        good,
        {**good, "期数": "2", "应还金额": "-5"},
        {**good, "期数": "3", "应还日期": "someday"},
    ]
    answer = empty.client("ingest").post("/api/v1/instalments", json={"rows": rows})
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["type"] == "/api/v1/problems/rejected-rows"
    assert {(e["row"], e["field"]) for e in problem["errors"]} == {(1, "应还金额"), (2, "应还日期")}
    assert _book(empty.engine)["instalments"] == []
    again = empty.client("ingest").post("/api/v1/instalments", json={"rows": [good]})
    assert again.status_code == 201


def _payments(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(payments)).scalar_one())


def test_a_retried_batch_counts_once_and_a_reused_key_with_another_body_is_refused(
    served: Served,
) -> None:
    with served.engine.connect() as conn:
        loan = conn.execute(text("SELECT external_id FROM loans ORDER BY id LIMIT 1")).scalar_one()
    row = {"payment_id": "P-1", "loan_id": loan, "paid_at": "2026-11-29 10:00", "amount": "12.34"}
    before = _payments(served.engine)
    client = served.client("ingest")
    first = client.post("/api/v1/payments", json={"rows": [row]}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/payments", json={"rows": [row]}, headers={"Idempotency-Key": "k1"})
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert _payments(served.engine) == before + 1
    other = {"rows": [{**row, "payment_id": "P-2", "amount": "99.00"}]}
    refused = client.post("/api/v1/payments", json=other, headers={"Idempotency-Key": "k1"})
    assert refused.status_code == 409
    assert refused.json()["type"] == "/api/v1/problems/conflict"
    assert _payments(served.engine) == before + 1
    # Each key has its own Idempotency-Key space.
    mine = served.client("all").post(
        "/api/v1/payments", json=other, headers={"Idempotency-Key": "k1"}
    )
    assert mine.status_code == 201, mine.text
    assert _payments(served.engine) == before + 2


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (b"{not json", 422, "invalid-request"),
        (b'{"rows": [{"a": "1"}], "extra": 1}', 422, "invalid-request"),
        (b'{"rows": [{"a": true}]}', 422, "invalid-request"),
        (b'{"rows": []}', 422, "invalid-request"),
        (b'{"rows": [{"a": "\\u0000"}]}', 422, "invalid-request"),
        (b'{"rows": [{"\\u0000": "1"}]}', 422, "invalid-request"),
        (b'{"rows": [{"a": "1"}], "snapshot_at": "0001-01-01T00:00:00Z"}', 422, "invalid-request"),
        (b"x" * (65 << 20), 413, "too-large"),
    ],
)
def test_bad_bodies_get_a_problem_and_write_nothing(
    served: Served, body: bytes, status: int, kind: str
) -> None:
    before = _book(served.engine)
    answer = served.client("ingest").post(
        "/api/v1/instalments", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == f"/api/v1/problems/{kind}"
    assert _book(served.engine) == before


def test_a_body_without_a_declared_length_is_cut_off_at_the_limit(served: Served) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield b"x" * (1 << 20)

    answer = served.client("operate").post(
        "/api/v1/replies", content=chunks(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.json()["type"] == "/api/v1/problems/too-large"


def test_the_audit_log_records_changes_and_refuses_edits(served: Served) -> None:
    client = served.client("operate")
    assert client.put("/api/v1/customers/C00000002/flags/hardship").status_code == 200
    assert client.delete("/api/v1/customers/C00000002/flags/hardship").status_code == 200
    entries = served.client("all").get("/api/v1/audit").json()["items"]
    assert [(e["action"], e["object"], e["after"]) for e in entries[-2:]] == [
        ("flag.set", "customer:C00000002", ["hardship"]),
        ("flag.clear", "customer:C00000002", []),
    ]
    assert all(e["actor"] == "key:test-operate" for e in entries[-2:])
    for statement in (update(audit_log).values(actor="someone else"), audit_log.delete()):
        with pytest.raises(DBAPIError, match="append-only"), served.engine.begin() as conn:
            conn.execute(statement)
    with served.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    assert count == len(entries)


def test_a_key_over_its_rate_is_told_when_to_come_back(served: Served) -> None:
    token = create_key(served.engine, "slow", frozenset({"read"}), NOW, rate=3).token
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{served.url}/api/v1/customers?limit=1"
    codes = [httpx.get(url, headers=headers).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = httpx.get(url, headers=headers)
    assert limited.json()["type"] == "/api/v1/problems/rate-limited"
    assert int(limited.headers["retry-after"]) >= 1


def test_reads_carry_an_etag_and_answer_304_when_unchanged(served: Served) -> None:
    client = served.client("read")
    first = client.get("/api/v1/customers/C00000003")
    assert first.status_code == 200 and first.headers["etag"]
    same = client.get(
        "/api/v1/customers/C00000003", headers={"If-None-Match": first.headers["etag"]}
    )
    assert same.status_code == 304
    timeline = client.get("/api/v1/customers/C00000003/timeline")
    served.client("operate").post(
        "/api/v1/replies", json={"from": first_number(served, "C00000003"), "text": "我明天还"}
    )
    after = client.get(
        "/api/v1/customers/C00000003/timeline", headers={"If-None-Match": timeline.headers["etag"]}
    )
    assert after.status_code == 200  # the reply changed it


def test_cursor_pages_cover_every_customer_once(served: Served) -> None:
    client = served.client("read")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/customers", params=params).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    with served.engine.connect() as conn:
        everyone = sorted(conn.execute(text("SELECT external_id FROM customers")).scalars())
    assert sorted(seen) == everyone and len(seen) == len(set(seen))
    assert client.get("/api/v1/customers", params={"cursor": "garbage"}).status_code == 422


def _stops(served: Served, number: str) -> list[str]:
    with served.engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT reason FROM number_stops WHERE address = :a"), {"a": number}
            ).scalars()
        )


def test_a_reply_through_the_api_opts_the_number_out_and_an_agent_can_lift_it(
    served: Served,
) -> None:
    number = first_number(served, "C00000004")
    answer = served.client("operate").post("/api/v1/replies", json={"from": number, "text": "退订"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["intent"] == "opt_out"
    assert "opt_out" in _stops(served, number)
    assert served.client("operate").delete(f"/api/v1/opt-outs/{number}").status_code == 200
    assert "opt_out" not in _stops(served, number)
    assert (
        served.client("operate").post("/api/v1/opt-outs", json={"number": number}).status_code
        == 201
    )
    assert "opt_out" in _stops(served, number)


def test_provider_callbacks_are_served_at_the_paths_listen_serves(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signatures are checked against the public URL, as under `listen`: a forged one is 403."""
    form = {"MessageSid": "SMx", "MessageStatus": "delivered"}
    forged = httpx.post(
        f"{served.url}/twilio/status", data=form, headers={"X-Twilio-Signature": "forged"}
    )
    assert forged.status_code == 403
    assert httpx.post(f"{served.url}/aliyun/report?token=wrong", content=b"[]").status_code == 403
    assert signature("t", "https://lender.example/twilio/status", form)


def test_explain_and_the_dry_run_answer_what_the_command_line_prints(
    served: Served, tmp_path: Path
) -> None:
    client = served.client("read")
    bodies = []
    for n in range(1, 30):
        explained = client.get(
            f"/api/v1/customers/C{n:08d}/explain", params={"as_of": "2026-11-30"}
        )
        assert explained.status_code == 200, explained.text
        bodies.append(explained.json())
    body = next(b for b in bodies if b["loans"])  # customers with an open loan are explained
    assert all({"step", "matched", "why_not"} <= set(s) for s in body["loans"][0]["steps"])
    assert any(b["decision"] is not None for b in bodies)
    assert client.get("/api/v1/customers/NOBODY/explain").status_code == 404
    dry = client.get("/api/v1/plan", params={"as_of": "2026-11-30"})
    assert dry.status_code == 200 and dry.json()["dry_run"] is True
    with served.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox")).scalar_one() == 0  # a dry run


def test_an_instalment_plan_agreed_through_the_api_is_listed_once(served: Served) -> None:
    read, operate = served.client("read"), served.client("operate")
    overdue = [
        (loan["id"], int(loan["overdue"]["minor"]))
        for page in [read.get("/api/v1/customers", params={"limit": 500}).json()]
        for c in page["items"][:40]
        for loan in read.get(f"/api/v1/customers/{c['id']}", params={"as_of": "2026-11-30"}).json()["loans"]
        if loan["overdue"]["minor"] > 0
    ]  # fmt: skip
    loan, owed = overdue[0]
    half = f"{owed // 2 // 100 + 1}.00"
    plan = {"loan": loan, "schedule": [{"due": "2026-12-15", "amount": half},
                                       {"due": "2027-01-15", "amount": half}]}  # fmt: skip
    made = operate.post("/api/v1/plans", json=plan)
    assert made.status_code == 201, made.text
    assert operate.post("/api/v1/plans", json=plan).status_code == 409
    listed = read.get("/api/v1/plans").json()["items"]
    assert [p["loan"] for p in listed] == [loan]
    short = {**plan, "loan": overdue[1][0], "schedule": [{"due": "2026-12-15", "amount": "0.01"}]}
    refused = operate.post("/api/v1/plans", json=short)
    assert refused.status_code == 422 and "cover" in refused.json()["detail"]
    negative = {**plan, "schedule": [{"due": "2026-12-15", "amount": "-1"}]}
    assert operate.post("/api/v1/plans", json=negative).status_code == 422


def test_two_servers_hold_a_keys_rate_together(served: Served) -> None:
    """Two limiters over one database, as two `serve` processes behind a balancer (PostgreSQL)
    or two `serve --workers 2` processes (a SQLite file): requests from both, at once, get the
    key's minute allowance between them and no more; a minute later the bucket is full again."""
    key = create_key(served.engine, "shared", frozenset({"read"}), NOW, rate=40)
    servers = [RateLimiter(served.engine), RateLimiter(served.engine)]
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda i: servers[i % 2].take(key.key, NOW), range(100)))
    assert sum(w == 0 for w in waits) == 40
    assert all(0 < w <= 1.5 for w in waits if w)  # 40 a minute: a token every 1.5 s
    assert servers[0].take(key.key, NOW + timedelta(seconds=3)) == 0  # two tokens back
    assert servers[1].take(key.key, NOW + timedelta(seconds=3)) == 0
    assert servers[1].take(key.key, NOW + timedelta(seconds=3)) > 0
    assert servers[0].take(key.key, NOW - timedelta(seconds=60)) > 0  # a clock behind: no refill
    alone = RateLimiter()  # the in-process bucket knows nothing of the others
    assert alone.take(key.key, NOW + timedelta(seconds=3)) == 0


def test_an_agents_call_is_logged_audited_and_on_the_timeline(served: Served) -> None:
    client = served.client("operate")
    made = client.post("/api/v1/customers/C00000004/calls",
                       json={"outcome": "no_answer", "note": "无人接听", "at": "2026-11-30T02:00:00Z"})  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["number"] == first_number(served, "C00000004")
    events = served.client("read").get("/api/v1/customers/C00000004/timeline").json()["items"]
    assert any(e["kind"] == "call" and "no_answer" in e["summary"] for e in events)
    audit = served.client("all").get("/api/v1/audit").json()["items"]
    assert audit[-1]["action"] == "call.log" and audit[-1]["actor"] == "key:test-operate"
    bad = client.post("/api/v1/customers/C00000004/calls", json={"outcome": "chatted"})
    assert bad.status_code == 422
    missing = client.post("/api/v1/customers/NOPE/calls", json={"outcome": "busy"})
    assert missing.status_code == 404
    later = client.post("/api/v1/customers/C00000004/calls",
                        json={"outcome": "busy", "at": "2030-01-01T00:00:00Z"})  # fmt: skip
    assert later.status_code == 422 and "after it was made" in later.json()["detail"]
    assert served.client("read").post("/api/v1/customers/C00000004/calls",
                                      json={"outcome": "busy"}).status_code == 403  # fmt: skip


def test_an_admin_key_holds_and_releases_a_provider_and_others_may_not(served: Served) -> None:
    with served.client("all") as admin, served.client("operate") as operator:
        listed = admin.get("/api/v1/providers").json()["items"]
        assert {"sandbox"} <= {p["provider"] for p in listed}
        assert (
            operator.put("/api/v1/providers/sandbox/hold", json={"reason": "x"}).status_code == 403
        )
        held = admin.put("/api/v1/providers/sandbox/hold", json={"reason": "carrier maintenance"})
        assert held.status_code == 200 and held.json()["state"] == "held"
        state = {p["provider"]: p for p in admin.get("/api/v1/providers").json()["items"]}
        assert (
            state["sandbox"]["state"] == "held"
            and state["sandbox"]["detail"] == "carrier maintenance"
        )
        unknown = admin.put("/api/v1/providers/nosuch/hold", json={"reason": "x"})
        assert unknown.status_code == 404 and unknown.headers["content-type"].startswith(
            "application/problem+json"
        )
        assert (
            admin.put("/api/v1/providers/sandbox/hold", json={"reason": "x", "more": 1}).status_code
            == 422
        )
        assert admin.delete("/api/v1/providers/sandbox/hold").status_code == 200
        assert admin.delete("/api/v1/providers/sandbox/hold").status_code == 404  # not held now
    with served.engine.connect() as conn:
        from sqlalchemy import select

        from cuikuan.store.schema import audit_log

        actions = conn.execute(select(audit_log.c.action, audit_log.c.actor)
                               .where(audit_log.c.object == "provider:sandbox")).all()  # fmt: skip
    assert [a for a, _ in actions] == ["provider.hold", "provider.release"]
    assert {actor for _, actor in actions} == {"key:test-all"}
