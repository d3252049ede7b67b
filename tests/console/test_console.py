"""The console in a real browser (Debian's chromium through Playwright) against a real server,
and its security rules over HTTP on both databases."""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import polars as pl
import pytest
from sqlalchemy import Engine, select, update

from cuikuan.services import users
from cuikuan.services.planner import make_plan
from cuikuan.services.replies import receive_reply
from cuikuan.store.schema import audit_log, customers, tasks
from cuikuan.store.schema import users as users_table
from tests.api.conftest import NOW, Served, first_number, serve
from tests.integration.conftest import build_book

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PASSWORD = "correct horse battery"


@pytest.fixture
def console(tmp_path: Path, db_url: str) -> Iterator[tuple[Served, dict[str, str]]]:
    """A book with tasks from replies (one hostile), agents li and wang, supervisor zhao; wang
    has taken one task. Returns the server and {role: customer of a task they may open}."""
    settings, engine = build_book(tmp_path, db_url, 300, 5)
    # Borrowers the day's plan would message: `explain` then has something to say about them.
    plan = make_plan(engine, settings, NOW.date(), dry_run=True).candidates
    ids = (
        plan.filter(plan["status"] == "planned")["customer"]
        .unique(maintain_order=True)
        .to_list()[:3]
    )
    for customer, text in zip(
        ids, ["能分期吗", "<script>window.__xss=1</script>再发就投诉", "能分期吗"], strict=True
    ):
        receive_reply(engine, settings, _number(engine, customer), text, NOW, source="sim")
    users.add_user(engine, "li", "agent", PASSWORD, NOW, team="east")
    users.add_user(engine, "wang", "agent", PASSWORD, NOW, team="east")
    users.add_user(engine, "zhao", "supervisor", PASSWORD, NOW, team="east")
    with engine.begin() as conn:
        theirs = conn.execute(
            select(tasks.c.id).join(customers, customers.c.id == tasks.c.customer_id)
            .where(customers.c.external_id == ids[2])
        ).scalar_one()  # fmt: skip
        conn.execute(
            update(tasks).where(tasks.c.id == theirs).values(state="taken", assignee="wang")
        )
    for served in serve(engine, settings):
        yield served, {"mine": ids[0], "hostile": ids[1], "theirs": ids[2]}
    engine.dispose()


def _number(engine: Engine, customer: str) -> str:
    from sqlalchemy import text

    with engine.connect() as conn:
        return str(conn.execute(text(
            "SELECT p.e164 FROM customer_phones p JOIN customers c ON c.id = p.customer_id "
            "WHERE c.external_id = :c ORDER BY p.position LIMIT 1"), {"c": customer}).scalar_one())  # fmt: skip


def _login(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    return client.post(
        "/console/login", data={"csrf": token.group(1), "name": name, "password": password}
    )


def _settled(
    client: httpx.Client, path: str, params: dict[str, str] | None = None
) -> httpx.Response:
    """The page once what it computes aside is there (web/background), as htmx asks again."""
    import time

    deadline = time.monotonic() + 30
    while True:
        page = client.get(path, params=params)
        if "-computing" not in page.text or time.monotonic() > deadline:
            return page
        time.sleep(0.1)


def _csrf(client: httpx.Client, path: str = "/console/work") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def test_every_page_and_fragment_needs_a_session_and_every_form_its_token(
    console: tuple[Served, dict[str, str]],
) -> None:
    served, who = console
    with httpx.Client(base_url=served.url, follow_redirects=False) as anon:
        for path in (
            "/console",
            "/console/work",
            "/console/borrowers",
            f"/console/borrowers/{who['mine']}",
        ):
            assert anon.get(path).headers.get("location") == "/console/login", path
        assert anon.post("/console/tasks/1/take").headers.get("location") == "/console/login"
    with httpx.Client(base_url=served.url, follow_redirects=False) as li:
        assert _login(li, "li").status_code == 303
        task_id = _task_of(served.engine, who["mine"])
        refused = li.post(f"/console/tasks/{task_id}/take", data={"csrf": "forged"})
        assert refused.status_code == 403
        assert li.post(f"/console/tasks/{task_id}/take").status_code == 403  # no token at all
        assert _task_state(served.engine, task_id) == ("open", None)
        ok = li.post(f"/console/tasks/{task_id}/take", data={"csrf": _csrf(li)})
        assert ok.status_code == 303 and _task_state(served.engine, task_id) == ("taken", "li")
        # The header htmx sends does as well as the field.
        theirs = _task_of(served.engine, who["theirs"])
        assert (
            li.post(
                f"/console/tasks/{theirs}/done", headers={"X-CSRF-Token": _csrf(li)}
            ).status_code
            == 403
        )
        assert (
            li.get(f"/console/borrowers/{who['theirs']}").status_code == 403
        )  # another's borrower
        for customer in (who["mine"], who["hostile"]):  # the hostile one's opt-out names it
            page = li.get(f"/console/borrowers/{customer}")
            assert page.status_code == 200 and "****" in page.text
            whole = first_number(served, customer)
            assert whole not in page.text and whole[3:] not in page.text
        assert first_number(served, who["hostile"])[3:] not in li.get("/console/work").text
        assert (
            "Content-Security-Policy" in page.headers
            and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        )
        assert (
            li.post(
                f"/console/borrowers/{who['mine']}/reveal", data={"csrf": _csrf(li)}
            ).status_code
            == 403
        )


def test_acts_on_a_borrower_go_through_the_services_with_their_checks_and_the_audit(
    console: tuple[Served, dict[str, str]],
) -> None:
    """What the borrower said is read like a reply (a promise with a date is recorded and
    pauses reminders, as `explain` then says); flags and number stops are the API's own acts;
    each is audited; an agent may not act on another agent's borrower."""
    from cuikuan.services.explanation import explain
    from cuikuan.store.schema import number_stops, promises

    served, who = console
    mine = who["mine"]
    with httpx.Client(base_url=served.url, follow_redirects=False) as li:
        assert _login(li, "li").status_code == 303
        token = _csrf(li, f"/console/borrowers/{mine}")
        said = li.post(f"/console/borrowers/{mine}/said", data={"csrf": token, "text": "我15号还"},
                       headers={"HX-Request": "true"})  # fmt: skip
        assert said.status_code == 200 and "promise_to_pay" in said.text
        # The promise pauses reminders: `explain` says so for today's plan.
        why = explain(served.engine, served.settings, mine, NOW.date(), NOW).as_json()
        assert "promise" in " ".join(why["decision"]["trail"]), why["decision"]
        assert (
            li.post(
                f"/console/borrowers/{mine}/flag",
                data={"csrf": token, "flag": "hardship", "op": "set"},
            ).status_code
            == 303
        )
        assert (
            li.post(
                f"/console/borrowers/{mine}/number",
                data={"csrf": token, "position": "0", "op": "stop"},
            ).status_code
            == 303
        )
        assert (
            li.post(f"/console/borrowers/{mine}/flag", data={"flag": "hardship"}).status_code == 403
        )  # no token
        # A call the agent made: logged against the number at that place, on the timeline
        # (masked for an agent), and counted by the caps (tests/integration/test_calls.py).
        called = li.post(f"/console/borrowers/{mine}/call",
                         data={"csrf": token, "position": "1", "outcome": "no_answer", "note": "<b>无人接听</b>"},
                         headers={"HX-Request": "true"})  # fmt: skip
        assert called.status_code == 200 and "no_answer" in called.text
        assert "+86" not in called.text  # the agent sees the number masked
        odd = li.post(f"/console/borrowers/{mine}/call",
                      data={"csrf": token, "position": "1", "outcome": "chatted"},
                      headers={"HX-Request": "true"})  # fmt: skip
        assert odd.status_code == 200 and "expected one of" in odd.text
        timeline_page = li.get(f"/console/borrowers/{mine}").text
        assert "&lt;b&gt;无人接听&lt;/b&gt;" in timeline_page and "<b>无人接听" not in timeline_page
        theirs = li.post(
            f"/console/borrowers/{who['theirs']}/flag", data={"csrf": token, "flag": "dispute"}
        )
        assert theirs.status_code == 403
        page = li.get(f"/console/borrowers/{mine}").text
        assert "hardship" in page and "promise" in page
        assert (
            li.get("/console/audit").status_code == 403
            and li.get("/console/report").status_code == 403
        )
    with served.engine.connect() as conn:
        promised = conn.execute(select(promises.c.promised_date, promises.c.source)).all()
        stopped = conn.execute(select(number_stops.c.address, number_stops.c.source)).all()
        actions = [
            r.action
            for r in conn.execute(
                select(audit_log.c.action, audit_log.c.actor).where(audit_log.c.actor == "user:li")
            )
        ]
        flags = conn.execute(
            select(customers.c.flags).where(customers.c.external_id == mine)
        ).scalar_one()
    assert [p.promised_date.day for p in promised] == [15]
    assert (first_number(served, mine), "console") in [tuple(r) for r in stopped]
    assert {"reply.record", "flag.set", "optout.add"} <= set(actions)
    assert "hardship" in flags and "dispute" not in str(_flags(served.engine, who["theirs"]))
    with httpx.Client(base_url=served.url, follow_redirects=False) as zhao:
        assert _login(zhao, "zhao").status_code == 303
        audit_page = zhao.get("/console/audit", params={"actor": "user:li"})
        assert audit_page.status_code == 200 and "flag.set" in audit_page.text
        chosen = {"start": "2026-11-01", "end": "2026-11-30", "window": "2"}
        report = _settled(zhao, "/console/report", chosen)
        assert report.status_code == 200 and "Funnel" in report.text
        assert (
            'id="who">zhao<' in report.text and 'value="2026-11-01"' in report.text
        )  # in the console
        assert "start=2026-11-01&amp;end=2026-11-30&amp;window=2&amp;format=json" in report.text
        assert zhao.get("/console/report", params={"start": "nonsense"}).status_code == 400
        assert zhao.get("/console/report", params={"window": "30"}).status_code == 400
        exported = zhao.get("/console/report/export", params={**chosen, "format": "html"})
        assert exported.status_code == 200 and exported.text.startswith("<!doctype html>")
        assert "attachment" in exported.headers["content-disposition"]
        data = zhao.get("/console/report/export", params={**chosen, "format": "json"}).json()
        from cuikuan.services.report import build_report

        same = build_report(served.engine, served.settings, NOW.date().replace(day=1),
                            NOW.date(), 2, now=NOW).as_dict()  # fmt: skip
        assert data == json.loads(json.dumps(same, ensure_ascii=False, default=str))
        assert data["window_days"] == 2


def _flags(engine: Engine, customer: str) -> object:
    with engine.connect() as conn:
        return conn.execute(
            select(customers.c.flags).where(customers.c.external_id == customer)
        ).scalar_one()


def test_a_login_makes_a_new_session_and_logout_everywhere_ends_them_all(
    console: tuple[Served, dict[str, str]],
) -> None:
    served, _ = console
    with (
        httpx.Client(base_url=served.url, follow_redirects=False) as a,
        httpx.Client(base_url=served.url, follow_redirects=False) as b,
    ):
        a.cookies.set(
            "cuikuan_console", "chosen-by-an-attacker", domain="127.0.0.1", path="/console"
        )
        assert a.get("/console").headers.get("location") == "/console/login"  # not a session
        assert _login(a, "li").status_code == 303
        assert a.cookies.get("cuikuan_console", domain="127.0.0.1") != "chosen-by-an-attacker"
        assert _login(b, "li").status_code == 303
        assert a.get("/console").status_code == b.get("/console").status_code == 200
        assert (
            a.post("/console/logout", data={"csrf": _csrf(a), "everywhere": "1"}).status_code == 303
        )
        assert b.get("/console").headers.get("location") == "/console/login"
    # Logging in needs the login form's own token too (no login CSRF).
    with httpx.Client(base_url=served.url, follow_redirects=False) as c:
        assert (
            c.post("/console/login", data={"name": "li", "password": PASSWORD}).status_code == 403
        )


def test_repeated_failures_lock_the_account_for_a_while(db_url: str, tmp_path: Path) -> None:
    _settings, engine = build_book(tmp_path, db_url, 10, 1)
    users.add_user(engine, "li", "agent", PASSWORD, NOW)
    for i in range(users.MAX_FAILURES):
        with pytest.raises(users.LoginRefused):
            users.login(engine, "li", f"wrong {i}", NOW + timedelta(seconds=i))
    with pytest.raises(users.LoginRefused):  # locked: even the right password is refused
        users.login(engine, "li", PASSWORD, NOW + timedelta(minutes=1))
    with pytest.raises(users.LoginRefused):
        users.login(engine, "nobody", PASSWORD, NOW)
    later = NOW + users.LOCKOUT + timedelta(seconds=5)
    assert users.login(engine, "li", PASSWORD, later).user.name == "li"
    with engine.connect() as conn:
        assert conn.execute(
            select(audit_log.c.action).where(audit_log.c.action == "user.locked")
        ).scalar_one()
    with pytest.raises(Exception, match="at least 10"):
        users.add_user(engine, "short", "agent", "tiny", NOW)
    users.disable(engine, "li", later, by="test")
    with pytest.raises(users.LoginRefused):
        users.login(engine, "li", PASSWORD, later)
    engine.dispose()


def _task_of(engine: Engine, customer: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(
            select(tasks.c.id).join(customers, customers.c.id == tasks.c.customer_id)
            .where(customers.c.external_id == customer)).scalar_one())  # fmt: skip


def _task_state(engine: Engine, task_id: int) -> tuple[str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(tasks.c.state, tasks.c.assignee).where(tasks.c.id == task_id)
        ).one()
    return row.state, row.assignee


@contextlib.contextmanager
def chinese_page() -> Iterator[Page]:
    """A page in Debian's chromium through Playwright, asking for Chinese; the test is skipped
    without chromium, and fails under CI=true (the browser tests must run there)."""
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("chromium is not installed (CI=true: the browser tests must run)")
        pytest.skip("chromium is not installed (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(
            locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"}
        )
        try:
            yield context.new_page()
        finally:
            browser.close()


def _shots(tmp_path: Path) -> Path:
    """Where the screenshots go: $CUIKUAN_SCREENSHOTS (docs/screenshots for the README), else
    the test's own folder."""
    folder = Path(os.environ.get("CUIKUAN_SCREENSHOTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_agent_works_the_list_in_the_browser(
    console: tuple[Served, dict[str, str]], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    served, who = console
    shots = _shots(tmp_path)
    with chinese_page() as page:
        page.goto(served.url + "/console")
        expect(page).to_have_url(re.compile(r"/console/login$"))
        page.fill("#name", "li")
        page.fill("#password", "wrong password!")
        page.click("#login")
        expect(page.locator("#login-error")).to_be_visible()
        page.screenshot(path=str(shots / "login-zh.png"), full_page=True)
        page.fill("#name", "li")
        page.fill("#password", PASSWORD)
        page.click("#login")
        expect(page.locator("#portfolio")).to_be_visible()
        expect(page.locator("nav")).to_contain_text("工作清单")
        page.screenshot(path=str(shots / "today-zh.png"), full_page=True)

        page.goto(served.url + "/console/work")
        rows = page.locator("#tasks tbody tr")
        expect(rows).to_have_count(2)  # their own and unassigned: not wang's
        page.screenshot(path=str(shots / "work-zh.png"), full_page=True)
        # By keyboard: Tab to the first Take button, Enter; htmx swaps the row in place.
        first_take = page.locator("#tasks button", has_text="领取").first
        for _ in range(60):
            page.keyboard.press("Tab")
            if first_take.evaluate("b => b === document.activeElement"):
                break
        else:
            raise AssertionError("Tab never reached a Take button")
        page.keyboard.press("Enter")
        expect(page.locator("#tasks tbody tr").first).to_contain_text("li")
        expect(page.locator("#tasks button", has_text="完成")).to_have_count(1)

        page.goto(served.url + f"/console/borrowers/{who['hostile']}")
        expect(page.locator("#timeline")).to_contain_text("<script>window.__xss=1</script>")
        assert page.evaluate("() => window.__xss") is None  # shown, never run
        expect(page.locator("#numbers")).to_contain_text("****")
        expect(page.locator("#reveal")).to_have_count(0)
        page.screenshot(path=str(shots / "borrower-zh.png"), full_page=True)
        answer = page.goto(served.url + f"/console/borrowers/{who['theirs']}")
        assert answer is not None and answer.status == 403
        # Record what the borrower said on the call: read as a promise, in place (htmx), then on
        # the timeline.
        page.goto(served.url + f"/console/borrowers/{who['mine']}")
        page.fill("#said", "我15号还")
        page.click("#record-said")
        expect(page.locator("#action-result")).to_contain_text("promise_to_pay")
        page.reload()
        expect(page.locator("#timeline")).to_contain_text("promise")

        page.goto(served.url + "/console/work")
        page.select_option("#locale-switch", "en")
        page.click("#locale-switch + button")
        expect(page.locator("nav").first).to_contain_text("Work list")
        page.screenshot(path=str(shots / "work-en.png"), full_page=True)
        page.goto(served.url + "/console")
        page.screenshot(path=str(shots / "today-en.png"), full_page=True)
        page.click("#logout")
        expect(page).to_have_url(re.compile(r"/console/login$"))
        page.goto(served.url + "/console/work")
        expect(page).to_have_url(re.compile(r"/console/login$"))

        # A supervisor may reveal the number; the reveal is in the audit log.
        page.fill("#name", "zhao")
        page.fill("#password", PASSWORD)
        page.click("#login")
        page.goto(served.url + f"/console/borrowers/{who['theirs']}")
        page.click("#reveal")
        expect(page.locator("#numbers")).to_contain_text(first_number(served, who["theirs"]))
        # The template editor lints as one types, with the rules of `templates check`.
        page.goto(served.url + "/console/templates")
        page.locator("#template-list a").first.click()
        expect(page.locator("#lint-result")).not_to_contain_text("banned")
        page.locator("#source").press("Control+End")
        page.locator("#source").press_sequentially("再不还款后果自负", delay=10)
        expect(page.locator("#findings")).to_contain_text("banned")
        # A real borrower's preview, with what the typed text would cost.
        page.fill("#preview-customer", who["theirs"])
        expect(page.locator("#preview-borrower")).to_have_text(who["theirs"])
        expect(page.locator("#cost")).not_to_be_empty()
        page.screenshot(path=str(shots / "template-zh.png"), full_page=True)
    with served.engine.connect() as conn:
        reveals = conn.execute(select(audit_log.c.actor, audit_log.c.object).where(audit_log.c.action == "phone.reveal")).all()  # fmt: skip
    assert [tuple(r) for r in reveals] == [("user:zhao", f"customer:{who['theirs']}")]


def test_the_work_list_pages_past_sla_first_then_by_priority(db_url: str, tmp_path: Path) -> None:
    from sqlalchemy import insert

    from cuikuan.services.tasks import worklist

    _settings, engine = build_book(tmp_path, db_url, 40, 2)
    with engine.connect() as conn:
        people = conn.execute(select(customers.c.id)).scalars().all()
    rows = []
    for i in range(130):
        due = NOW + timedelta(hours=(i % 7) - 3)  # some past their SLA, some not
        assignee = None if i % 5 else ("wang" if i % 10 else "li")
        rows.append({"customer_id": people[i % len(people)], "kind": "call_back", "priority": 1 + i % 3, "state": "open",
                     "assignee": assignee, "due_at": due, "reply_id": None, "summary": f"t{i}", "notes": "[]",
                     "created_at": NOW, "updated_at": NOW})  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(tasks), rows)
    first = worklist(engine, NOW, limit=100)
    second = worklist(engine, NOW, limit=100, offset=100)
    assert len(first) == 100 and len(second) == 30
    assert not {r["id"] for r in first} & {r["id"] for r in second}
    everything = first + second
    keys = [(not r["late"], r["priority"], r["due_at"]) for r in everything]
    assert keys == sorted(keys)  # past SLA first, then priority, then due
    assert all(
        bool(r["late"]) == (r["due_at"].replace(tzinfo=NOW.tzinfo) < NOW) for r in everything
    )
    li = worklist(engine, NOW, visible_to="li", limit=1000)
    assert li and all(r["assignee"] in (None, "li") for r in li)
    assert len(li) == sum(1 for r in rows if r["assignee"] in (None, "li"))
    engine.dispose()


def test_a_template_change_is_a_draft_until_another_compliance_user_approves_it(
    console: tuple[Served, dict[str, str]],
) -> None:
    """Four eyes in the console: a supervisor saves a draft (banned wording is stopped with the
    findings), an agent may not approve, the author may not approve their own, a compliance
    user approves and the file changes; the old text can be restored as a new draft."""
    from cuikuan.services.messages import templates_dir
    from cuikuan.services.versions import versions

    served, _ = console
    users.add_user(served.engine, "cara", "compliance", PASSWORD, NOW, team="east")
    name = "overdue_firm.zh-CN.txt"
    with httpx.Client(base_url=served.url, follow_redirects=False) as zhao:
        assert _login(zhao, "zhao").status_code == 303
        page = zhao.get(f"/console/templates/{name}").text
        source = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S).group(1))  # type: ignore[union-attr]
        token = _csrf(zhao, f"/console/templates/{name}")
        bad = zhao.post(f"/console/templates/{name}/draft",
                        data={"csrf": token, "source": source.rstrip() + "不还就通知你家人。"})  # fmt: skip
        assert bad.status_code == 200 and "the check stops it" in bad.text
        assert versions(served.engine) == []
        changed = source.replace("请尽快还款", "请今天还款")
        saved = zhao.post(
            f"/console/templates/{name}/draft", data={"csrf": token, "source": changed}
        )
        assert saved.status_code == 200 and 'id="draft-result"' in saved.text
        (draft,) = versions(served.engine, state="draft")
        own = zhao.post(f"/console/versions/{draft.id}/approve", data={"csrf": token})
        assert own.status_code == 403  # a supervisor does not approve
    with httpx.Client(base_url=served.url, follow_redirects=False) as li:
        assert _login(li, "li").status_code == 303
        assert li.post(f"/console/versions/{draft.id}/approve",
                       data={"csrf": _csrf(li)}).status_code == 403  # fmt: skip
    with httpx.Client(base_url=served.url, follow_redirects=False) as cara:
        assert _login(cara, "cara").status_code == 303
        assert draft.id and f"#{draft.id}" in cara.get("/console/templates").text
        listing = cara.get("/console/templates").text
        assert "回复率" in listing and "退订率" in listing and "投诉率" in listing
        token = _csrf(cara, "/console/templates")
        assert (
            cara.post(f"/console/versions/{draft.id}/approve", data={"csrf": "x"}).status_code
            == 403
        )
        ok = cara.post(f"/console/versions/{draft.id}/approve", data={"csrf": token})
        assert ok.status_code == 303
        assert "请今天还款" in (templates_dir(served.settings) / name).read_text("utf-8")
        old = next(v for v in versions(served.engine, name) if v.author == "folder")
        assert (
            cara.post(f"/console/versions/{old.id}/restore", data={"csrf": token}).status_code
            == 303
        )
        (back,) = versions(served.engine, state="draft")
        mine = cara.post(f"/console/versions/{back.id}/approve", data={"csrf": token})
        assert mine.status_code == 409 and "other than its author" in mine.text


def test_strategy_and_policy_changes_need_a_second_person_and_explain_shows_the_rules(
    console: tuple[Served, dict[str, str]],
) -> None:
    """The strategy page: the steps and the policy in force; the strategy file's draft checked
    as the plan loads it (as one types, and on save), approved by compliance, never its author;
    the [policy] table compliance's alone; explain for a borrower, the number masked, an agent
    only for borrowers they may open."""
    import tomllib

    from cuikuan.services.strategy_file import shipped_strategy_text
    from cuikuan.services.versions import versions
    from cuikuan.settings import load_settings

    served, who = console
    for name in ("cara", "dana"):
        users.add_user(served.engine, name, "compliance", PASSWORD, NOW, team="east")
    settings = served.settings
    assert settings.source is not None
    strategy_file = settings.path(settings.plan.strategy)
    with httpx.Client(base_url=served.url, follow_redirects=False) as li:
        assert _login(li, "li").status_code == 303
        assert li.get("/console/strategy").status_code == 403
        assert li.get(f"/console/explain?customer={who['theirs']}").status_code == 403
        mine = li.get(f"/console/explain?customer={who['mine']}&day={NOW.date()}")
        assert mine.status_code == 200 and 'id="trail"' in mine.text
        whole = first_number(served, who["mine"])
        assert whole not in mine.text and whole[3:] not in mine.text
    with httpx.Client(base_url=served.url, follow_redirects=False) as zhao:
        assert _login(zhao, "zhao").status_code == 303
        page = zhao.get("/console/strategy")
        assert page.status_code == 200
        assert 'id="steps"' in page.text and ">m2<" in page.text and "08:00-21:00" in page.text
        token = _csrf(zhao, "/console/strategy")
        broken = shipped_strategy_text().replace("control = 0.10", "control = 7", 1)
        checked = zhao.post("/console/strategy/check", data={"csrf": token, "source": broken})
        assert checked.status_code == 200 and re.search(
            r"\(draft\):\d+: steps\.\d+\.control", checked.text
        )
        refused = zhao.post("/console/strategy/draft", data={"csrf": token, "source": broken})
        assert refused.status_code == 422 and versions(served.engine, kind="strategy") == []
        held = shipped_strategy_text().replace("control = 0.10", "control = 0.50")
        saved = zhao.post("/console/strategy/draft",
                          data={"csrf": token, "source": held, "note": "more held back"})  # fmt: skip
        assert saved.status_code == 200 and 'id="draft-result"' in saved.text
        (draft,) = versions(served.engine, state="draft", kind="strategy")
        policy = '[policy]\njurisdiction = "cn"\nwindow_end = "20:00"\n'
        assert zhao.post("/console/policy/draft",
                         data={"csrf": token, "source": policy}).status_code == 403  # fmt: skip
        assert zhao.post(f"/console/versions/{draft.id}/approve",
                         data={"csrf": token}).status_code == 403  # fmt: skip
        assert not strategy_file.exists() or "0.50" not in strategy_file.read_text("utf-8")
        hostile = zhao.get("/console/explain?customer=%3Cscript%3Ex%3C/script%3E")
        assert hostile.status_code == 404 and "<script>x" not in hostile.text
    with httpx.Client(base_url=served.url, follow_redirects=False) as cara:
        assert _login(cara, "cara").status_code == 303
        token = _csrf(cara, "/console/strategy")
        ok = cara.post(f"/console/versions/{draft.id}/approve", data={"csrf": token})
        assert ok.status_code == 303 and ok.headers["location"] == "/console/strategy"
        assert "control = 0.50" in strategy_file.read_text("utf-8")
        assert "50%" in cara.get("/console/strategy").text
        bad = cara.post("/console/policy/check",
                        data={"csrf": token, "source": '[policy]\nwindow_end = "8pm"\n'})  # fmt: skip
        assert ":2: policy.window_end" in bad.text
        assert cara.post("/console/policy/draft",
                         data={"csrf": token, "source": policy}).status_code == 200  # fmt: skip
        (pdraft,) = versions(served.engine, state="draft", kind="policy")
        own = cara.post(f"/console/versions/{pdraft.id}/approve", data={"csrf": token})
        assert own.status_code == 409 and "other than its author" in own.text
    before = tomllib.loads(settings.source.read_text("utf-8"))
    with httpx.Client(base_url=served.url, follow_redirects=False) as dana:
        assert _login(dana, "dana").status_code == 303
        token = _csrf(dana, "/console/strategy")
        assert dana.post(f"/console/versions/{pdraft.id}/approve",
                         data={"csrf": token}).status_code == 303  # fmt: skip
    after = tomllib.loads(settings.source.read_text("utf-8"))
    assert after["policy"] == {"jurisdiction": "cn", "window_end": "20:00"}
    assert {k: v for k, v in after.items() if k != "policy"} == {
        k: v for k, v in before.items() if k != "policy"
    }
    assert load_settings(settings.source).policy.window_end == "20:00"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_strategy_change_is_approved_by_a_second_user_in_the_browser(
    console: tuple[Served, dict[str, str]], tmp_path: Path
) -> None:
    """In chromium: a compliance user edits the strategy (the check answers as they type),
    saves a draft and cannot approve it; a second one approves it and the page shows the new
    share; explain for a borrower; screenshots in both languages."""
    from playwright.sync_api import expect

    served, who = console
    for name in ("cara", "dana"):
        users.add_user(served.engine, name, "compliance", PASSWORD, NOW, team="east")
    shots = _shots(tmp_path)
    with chinese_page() as page:

        def login(name: str) -> None:
            page.goto(served.url + "/console/login")
            page.fill("#name", name)
            page.fill("#password", PASSWORD)
            page.click("#login")
            expect(page.locator("#portfolio")).to_be_visible()

        login("cara")
        page.goto(served.url + "/console/strategy")
        expect(page.locator("#steps")).to_contain_text("m2")
        source = page.locator("#strategy-source")
        text = source.input_value()
        source.fill(text.replace("control = 0.10", "control = 7", 1))
        source.dispatch_event("change")
        expect(page.locator("#strategy-check")).to_contain_text("control")
        source.fill(text.replace('id = "m2"\n', 'id = "m2"\n# firmer now\n'))
        source.dispatch_event("change")
        expect(page.locator("#strategy-check")).to_contain_text("检查通过")
        source.fill(text.replace("control = 0.10", "control = 0.30"))
        page.click("#save-strategy")
        expect(page.locator("#draft-result")).to_contain_text("草稿")
        page.screenshot(path=str(shots / "strategy-zh.png"), full_page=True)
        draft = page.locator("#strategy-versions button", has_text="批准").first
        draft.click()
        expect(page.locator("body")).to_contain_text("other than its author")
        page.goto(served.url + "/console")
        page.click("#logout")

        login("dana")
        page.goto(served.url + "/console/strategy")
        page.locator("#strategy-versions button", has_text="批准").first.click()
        expect(page).to_have_url(re.compile(r"/console/strategy$"))
        expect(page.locator("#steps")).to_contain_text("30%")
        page.goto(served.url + f"/console/explain?customer={who['mine']}&day={NOW.date()}")
        expect(page.locator("#trail")).to_be_visible()
        page.screenshot(path=str(shots / "explain-zh.png"), full_page=True)
        page.select_option("#locale-switch", "en")
        page.click("#locale-switch + button")
        page.goto(served.url + "/console/strategy")
        expect(page.locator("h1")).to_contain_text("Strategy and policy")
        page.screenshot(path=str(shots / "strategy-en.png"), full_page=True)


def test_an_agent_agrees_an_instalment_plan_on_the_borrower_page(
    console: tuple[Served, dict[str, str]],
) -> None:
    """The borrower page's plan form is `plans create`: a schedule that does not cover what is
    overdue is refused with the service's words; one that does is agreed, audited and on the
    timeline; a loan of another borrower is refused."""
    from decimal import Decimal

    from cuikuan.domain.money import currency_digits
    from cuikuan.services.portfolio import loan_positions
    from cuikuan.store.schema import arrangements, loans

    served, _ = console
    engine, settings = served.engine, served.settings
    late = (
        loan_positions(engine, NOW.date(), settings)
        .filter((pl.col("dpd") > 0) & (pl.col("overdue_amount") > 0))
        .sort("loan_id")
        .row(0, named=True)
    )
    with engine.connect() as conn:
        loan, customer = conn.execute(
            select(loans.c.external_id, customers.c.external_id)
            .join(customers, customers.c.id == loans.c.customer_id)
            .where(loans.c.id == late["loan_id"])
        ).one()  # fmt: skip
    receive_reply(engine, settings, _number(engine, customer), "能分期吗", NOW, source="sim")
    overdue = Decimal(late["overdue_amount"]).scaleb(-currency_digits(late["currency"]))
    first, second = NOW.date() + timedelta(days=5), NOW.date() + timedelta(days=20)
    with httpx.Client(base_url=served.url, follow_redirects=False) as li:
        assert _login(li, "li").status_code == 303
        page = li.get(f"/console/borrowers/{customer}")
        assert page.status_code == 200 and 'id="plan-schedule"' in page.text
        token = _csrf(li, f"/console/borrowers/{customer}")
        hx = {"HX-Request": "true"}
        short = li.post(f"/console/borrowers/{customer}/plan", headers=hx,
                        data={"csrf": token, "loan": loan, "schedule": f"{first}:1"})  # fmt: skip
        assert short.status_code == 200 and f"plan for {loan}" in html.unescape(short.text)
        garbled = li.post(f"/console/borrowers/{customer}/plan", headers=hx,
                          data={"csrf": token, "loan": loan, "schedule": "soon:lots"})  # fmt: skip
        assert "expected DATE:AMOUNT" in garbled.text
        other = li.post(f"/console/borrowers/{customer}/plan", headers=hx,
                        data={"csrf": token, "loan": "L-NOT-HERS", "schedule": f"{first}:1"})  # fmt: skip
        assert "not a loan of this borrower" in html.unescape(other.text)
        half = (overdue / 2).quantize(Decimal("0.01"))
        schedule = f"{first}:{half}\n{second}:{overdue - half}"
        agreed = li.post(f"/console/borrowers/{customer}/plan", headers=hx,
                         data={"csrf": token, "loan": loan, "schedule": schedule})  # fmt: skip
        assert agreed.status_code == 200 and f"{loan}" in agreed.text and "plan " in agreed.text
        assert "plan" in li.get(f"/console/borrowers/{customer}").text
    with engine.connect() as conn:
        made = conn.execute(select(arrangements.c.agreed_by, arrangements.c.status)).all()
        audited = conn.execute(
            select(audit_log.c.actor, audit_log.c.object).where(audit_log.c.action == "plan.create")
        ).all()  # fmt: skip
    assert [tuple(r) for r in made] == [("user:li", "current")]
    assert [tuple(r) for r in audited] == [("user:li", f"loan:{loan}")]


def test_supervisors_see_and_hand_out_their_teams_work_and_views_can_be_saved(
    console: tuple[Served, dict[str, str]],
) -> None:
    """A supervisor with a team sees the unassigned tasks and their team's, hands ticked tasks
    to a team member (all or none, each audited), never to or from another team; an agent may
    not hand out work. Saved views keep only the list's own keys, per user, names escaped."""
    from cuikuan.services.saved_views import views
    from cuikuan.services.tasks import assign

    served, who = console
    engine = served.engine
    users.add_user(engine, "chen", "agent", PASSWORD, NOW, team="west")
    users.add_user(engine, "qian", "supervisor", PASSWORD, NOW, team="west")
    with engine.connect() as conn:
        more = conn.execute(
            select(customers.c.external_id).order_by(customers.c.id.desc()).limit(4)
        ).scalars().all()  # fmt: skip
    for customer in more:  # their hardship pleas: more open tasks to hand out
        receive_reply(engine, served.settings, _number(engine, customer), "最近没钱", NOW,
                      source="sim")  # fmt: skip
    with engine.connect() as conn:
        open_ids = list(conn.execute(
            select(tasks.c.id).where(tasks.c.assignee.is_(None)).order_by(tasks.c.id)
        ).scalars())  # fmt: skip
    assert len(open_ids) >= 4
    west = open_ids[0]
    assign(engine, [west], "chen", "user:qian", NOW)

    def listed(client: httpx.Client) -> set[int]:
        return {int(i) for i in re.findall(r'id="task-(\d+)"', client.get("/console/work").text)}

    with httpx.Client(base_url=served.url, follow_redirects=False) as zhao:
        assert _login(zhao, "zhao").status_code == 303
        seen = listed(zhao)
        assert west not in seen and _task_of(engine, who["theirs"]) in seen  # wang is east
        token = _csrf(zhao)
        picked = open_ids[1:3]
        ok = zhao.post("/console/tasks/assign",
                       data={"csrf": token, "assignee": "li", "task": [str(i) for i in picked]})  # fmt: skip
        assert ok.status_code == 303
        assert all(_task_state(engine, i) == ("taken", "li") for i in picked)
        other = zhao.post("/console/tasks/assign",
                          data={"csrf": token, "assignee": "chen", "task": [str(open_ids[3])]})  # fmt: skip
        assert other.status_code == 409 and "not in your team" in other.text
        theirs = zhao.post("/console/tasks/assign",
                           data={"csrf": token, "assignee": "li", "task": [str(west), str(open_ids[3])]})  # fmt: skip
        assert theirs.status_code == 409 and "outside your team" in theirs.text
        assert _task_state(engine, open_ids[3]) == ("open", None)  # all or none
    with httpx.Client(base_url=served.url, follow_redirects=False) as qian:
        assert _login(qian, "qian").status_code == 303
        seen = listed(qian)
        assert west in seen and _task_of(engine, who["theirs"]) not in seen
    with httpx.Client(base_url=served.url, follow_redirects=False) as li:
        assert _login(li, "li").status_code == 303
        token = _csrf(li)
        refused = li.post("/console/tasks/assign",
                          data={"csrf": token, "assignee": "li", "task": [str(open_ids[3])]})  # fmt: skip
        assert refused.status_code == 403
        saved = li.post("/console/work/views", data={
            "csrf": token, "name": "<b>投诉</b>",
            "query": "filter=complaints&kind=complaint&assignee=wang&filter=x",
        })  # fmt: skip
        assert saved.status_code == 303
        page = li.get("/console/work").text
        assert "&lt;b&gt;投诉&lt;/b&gt;" in page and "<b>投诉</b>" not in page
    with engine.connect() as conn:
        li_id = conn.execute(
            select(users_table.c.id).where(users_table.c.name == "li")
        ).scalar_one()
        zhao_id = conn.execute(
            select(users_table.c.id).where(users_table.c.name == "zhao")
        ).scalar_one()
        assigned = conn.execute(
            select(audit_log.c.actor, audit_log.c.object).where(audit_log.c.action == "task.assign")
        ).all()  # fmt: skip
    assert [v.query for v in views(engine, li_id)] == ["filter=complaints&kind=complaint"]
    assert views(engine, zhao_id) == []
    assert sorted(tuple(r) for r in assigned) == sorted(
        [("user:qian", f"task:{west}")] + [("user:zhao", f"task:{i}") for i in open_ids[1:3]]
    )


def test_the_template_editor_previews_a_real_borrower_with_segments_and_cost(
    console: tuple[Served, dict[str, str]],
) -> None:
    """The editor's text (not the saved file) rendered for a real borrower's most overdue loan
    today, with its billing units and cost; an unknown id is said, and the sample is shown."""
    served, who = console
    name = "overdue_firm.zh-CN.txt"
    with served.engine.connect() as conn:
        person = conn.execute(
            select(customers.c.name).where(customers.c.external_id == who["mine"])
        ).scalar_one()
    with httpx.Client(base_url=served.url, follow_redirects=False) as zhao:
        assert _login(zhao, "zhao").status_code == 303
        page = zhao.get(f"/console/templates/{name}").text
        source = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S).group(1))  # type: ignore[union-attr]
        edited = source.rstrip("\n") + "（草稿里的新句子）\n"
        token = _csrf(zhao, f"/console/templates/{name}")
        found = zhao.post(f"/console/templates/{name}/lint",
                          data={"csrf": token, "source": edited, "customer": who["mine"]})  # fmt: skip
        assert found.status_code == 200
        assert f'id="preview-borrower">{who["mine"]}<' in found.text
        assert "草稿里的新句子" in found.text and person[0] in found.text
        units = int(re.search(r"计费条数: (\d+)", found.text).group(1))  # type: ignore[union-attr]
        price = served.settings.plan.price_per_billing_unit
        assert f'<span id="cost">{units * price}</span>' in found.text
        missing = zhao.post(f"/console/templates/{name}/lint",
                            data={"csrf": token, "source": edited, "customer": "NO-SUCH-ONE"})  # fmt: skip
        assert 'id="preview-problem"' in missing.text and "NO-SUCH-ONE" in missing.text
        assert "草稿里的新句子" in missing.text  # the sample borrower instead


def test_a_slow_portfolio_or_report_does_not_hold_the_page(
    console: tuple[Served, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a large book Today's portfolio (after an import) and a report of one's own range take
    seconds: the page answers at once with "computing" and asks again until they are there; the
    same range opened by two people is computed once; a failure is said once, then retried."""
    import threading
    import time

    from cuikuan.services import portfolio, report_store

    served, _ = console
    release = threading.Event()
    runs: list[str] = []
    real_portfolio, real_build = portfolio.portfolio, report_store.build_report

    def held() -> None:
        # Sleeps, not Event.wait(timeout): a timed wait misbehaves under libfaketime.
        deadline = time.monotonic() + 30
        while not release.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)

    def slow_portfolio(*args: object, **kwargs: object) -> object:
        runs.append("portfolio")
        held()
        return real_portfolio(*args, **kwargs)  # type: ignore[arg-type]

    def slow_build(*args: object, **kwargs: object) -> object:
        runs.append("report")
        held()
        return real_build(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(portfolio, "portfolio", slow_portfolio)
    monkeypatch.setattr(report_store, "build_report", slow_build)
    chosen = {"start": "2026-11-02", "end": "2026-11-29", "window": "2"}
    with httpx.Client(base_url=served.url, follow_redirects=False) as zhao:
        assert _login(zhao, "zhao").status_code == 303
        began = time.monotonic()
        today = zhao.get("/console")
        report = zhao.get("/console/report", params=chosen)
        again = zhao.get("/console/report", params=chosen)
        assert time.monotonic() - began < 5  # not the 30 s the computations are held
        assert (
            'id="portfolio-computing"' in today.text and 'hx-select="#portfolio-slot"' in today.text
        )
        assert 'id="plan"' in today.text  # the rest of the page is there
        assert 'id="report-computing"' in report.text and "Funnel" not in report.text
        assert 'id="report-computing"' in again.text
        assert runs.count("report") == 1  # one computation for both views
        release.set()
        assert 'id="portfolio"' in _settled(zhao, "/console").text
        assert "Funnel" in _settled(zhao, "/console/report", chosen).text
        assert runs.count("report") == 1 and runs.count("portfolio") == 1

        def broken(*args: object, **kwargs: object) -> object:
            raise RuntimeError("the database went away")

        monkeypatch.setattr(report_store, "build_report", broken)
        other = {"start": "2026-11-09", "end": "2026-11-29", "window": "3"}
        failed = _settled(zhao, "/console/report", other)
        assert 'id="report-failed"' in failed.text and "went away" not in failed.text
        monkeypatch.setattr(report_store, "build_report", real_build)
        assert "Funnel" in _settled(zhao, "/console/report", other).text  # tried again
