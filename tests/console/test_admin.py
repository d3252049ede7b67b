"""The console's admin page (users, API keys, providers) and, over every console route the app
serves, the rules each page and fragment must keep: a session, a form token, a role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from cuikuan.api.app import create_app
from cuikuan.services import users
from cuikuan.store import provider_states
from cuikuan.store.schema import audit_log, console_sessions
from cuikuan.store.schema import users as users_table
from tests.api.conftest import NOW, Served, serve
from tests.console.test_console import PASSWORD, _csrf, _login
from tests.integration.conftest import build_book


@pytest.fixture
def admin_console(tmp_path: Path, db_url: str) -> Iterator[Served]:
    settings, engine = build_book(tmp_path, db_url, 60, 3)
    for name, role in (("root", "admin"), ("comp", "compliance"), ("zhao", "supervisor"),
                       ("li", "agent")):  # fmt: skip
        users.add_user(engine, name, role, PASSWORD, NOW, team="east")
    yield from serve(engine, settings)
    engine.dispose()


def _audited(served: Served, action: str) -> list[tuple[str, str, str | None]]:
    with served.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.object, audit_log.c.after)
            .where(audit_log.c.action == action)
            .order_by(audit_log.c.id)
        ).all()
    return [(r.actor, r.object, r.after) for r in rows]


def _act(client: httpx.Client, what: str, action: str, **form: str) -> httpx.Response:
    return client.post(
        f"/console/admin/{what}/{action}", data={"csrf": _csrf(client, "/console/admin"), **form}
    )


def test_an_admin_manages_users_with_every_change_audited_and_sessions_ended(
    admin_console: Served,
) -> None:
    served = admin_console
    with httpx.Client(base_url=served.url, follow_redirects=False) as root:
        assert _login(root, "root").status_code == 303
        page = root.get("/console/admin")
        assert page.status_code == 200 and "zhao" in page.text and "<form" in page.text
        made = _act(root, "users", "add", name="<b>new</b>", role="agent", team="west",
                    password="a long enough one")  # fmt: skip
        assert made.status_code == 303
        listed = root.get("/console/admin").text
        assert "&lt;b&gt;new&lt;/b&gt;" in listed and "<b>new</b>" not in listed  # escaped
        assert _audited(served, "user.add")[-1][:2] == ("user:root", "user:<b>new</b>")
        # A weak password is refused with the reason, and nothing is made.
        weak = _act(root, "users", "add", name="weak", role="agent", password="short")
        assert weak.status_code == 422 and "at least 10 characters" in weak.text
        assert "weak" not in [u["name"] for u in users.list_users(served.engine)]
        # A new role ends the user's sessions: the page they had open stops working.
        with httpx.Client(base_url=served.url, follow_redirects=False) as li:
            assert _login(li, "li").status_code == 303
            assert li.get("/console/work").status_code == 200
            assert (
                _act(root, "users", "change", name="li", role="supervisor", team="east").status_code
                == 303
            )
            assert li.get("/console/work").headers.get("location") == "/console/login"
            assert _login(li, "li").status_code == 303
            assert "(supervisor)" in li.get("/console/work").text
            # A reset password ends them too, and the old password no longer works.
            assert (
                _act(
                    root, "users", "password", name="li", password="another passphrase"
                ).status_code
                == 303
            )
            assert li.get("/console/work").headers.get("location") == "/console/login"
            assert _login(li, "li").status_code != 303
            assert _login(li, "li", "another passphrase").status_code == 303
            assert _act(root, "users", "disable", name="li").status_code == 303
            assert li.get("/console/work").headers.get("location") == "/console/login"
            assert _login(li, "li", "another passphrase").status_code != 303
            assert _act(root, "users", "enable", name="li").status_code == 303
            assert _login(li, "li", "another passphrase").status_code == 303
        for action in ("user.change", "user.password", "user.disable", "user.enable"):
            assert _audited(served, action)[-1][:2] == ("user:root", "user:li"), action
        # The last enabled admin can neither leave nor lose the role: nobody would manage users.
        refused = _act(root, "users", "disable", name="root")
        assert refused.status_code == 422 and "last enabled admin" in refused.text
        assert _act(root, "users", "change", name="root", role="agent").status_code == 422
        with served.engine.connect() as conn:
            row = conn.execute(select(users_table).where(users_table.c.name == "root")).one()
        assert row.role == "admin" and not row.disabled


def test_a_key_made_in_the_console_is_shown_once_works_and_can_be_revoked(
    admin_console: Served,
) -> None:
    served = admin_console
    with httpx.Client(base_url=served.url, follow_redirects=False) as root:
        assert _login(root, "root").status_code == 303
        made = _act(root, "keys", "create", name="core-banking", scope_read="1", rate="120")
        assert made.status_code == 200
        found = re.search(r'<pre id="key-token">(ck_[^<]+)</pre>', made.text)
        assert found is not None
        token = found.group(1)
        assert token not in root.get("/console/admin").text  # once
        ((actor, target, after),) = _audited(served, "key.create")[-1:]
        assert (actor, target) == ("user:root", "key:core-banking") and token not in (after or "")
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=served.url, headers=headers) as api:
            assert api.get("/api/v1/portfolio").status_code == 200
            assert api.post("/api/v1/opt-outs", json={}).status_code == 403  # read only
            assert _act(root, "keys", "create", name="none ticked").status_code == 422
            assert _act(root, "keys", "revoke", name="core-banking").status_code == 303
            assert api.get("/api/v1/portfolio").status_code == 401
        assert _audited(served, "key.revoke")[-1][:2] == ("user:root", "key:core-banking")


def test_an_admin_holds_and_releases_a_provider(admin_console: Served) -> None:
    served = admin_console
    with httpx.Client(base_url=served.url, follow_redirects=False) as root:
        assert _login(root, "root").status_code == 303
        assert _act(root, "providers", "hold", name="sandbox", reason="").status_code == 422
        assert _act(root, "providers", "hold", name="nosuch", reason="x").status_code == 422
        held = _act(root, "providers", "hold", name="sandbox", reason="<i>carrier</i> maintenance")
        assert held.status_code == 303
        page = root.get("/console/admin").text
        assert "&lt;i&gt;carrier&lt;/i&gt; maintenance" in page and 'id="release-' in page
        with served.engine.connect() as conn:
            assert provider_states.held(conn) == {"sandbox": "<i>carrier</i> maintenance"}
        assert "held" in root.get("/console").text  # Today's provider health says so
        assert _act(root, "providers", "release", name="sandbox").status_code == 303
        with served.engine.connect() as conn:
            assert provider_states.held(conn) == {}
        assert [a for a, *_ in _audited(served, "provider.hold")] == ["user:root"]
        assert [a for a, *_ in _audited(served, "provider.release")] == ["user:root"]


# --- every console route: a session, a form token, a role ---------------------------------

# Who may use each route besides admins; None: anyone with a session (the page itself scopes
# what an agent sees). A route missing here fails the test: a new page must say who may use it.
ROLES: dict[tuple[str, str], tuple[str, ...] | None] = {
    ("GET", "/console"): None,
    ("GET", "/console/work"): None,
    ("POST", "/console/work/views"): None,
    ("POST", "/console/work/views/{view_id}/forget"): None,
    ("POST", "/console/tasks/assign"): ("supervisor",),
    ("POST", "/console/tasks/{task_id}/{action}"): None,
    ("GET", "/console/borrowers"): None,
    ("GET", "/console/borrowers/{external_id}"): None,
    ("POST", "/console/borrowers/{external_id}/reveal"): ("supervisor", "compliance"),
    ("POST", "/console/borrowers/{external_id}/said"): None,
    ("POST", "/console/borrowers/{external_id}/call"): None,
    ("POST", "/console/borrowers/{external_id}/plan"): None,
    ("POST", "/console/borrowers/{external_id}/flag"): None,
    ("POST", "/console/borrowers/{external_id}/number"): None,
    ("GET", "/console/audit"): ("compliance", "supervisor"),
    ("GET", "/console/report"): ("compliance", "supervisor"),
    ("GET", "/console/report/export"): ("compliance", "supervisor"),
    ("POST", "/console/report/refresh"): ("compliance", "supervisor"),
    ("GET", "/console/templates"): ("compliance", "supervisor"),
    ("GET", "/console/templates/{file_name}"): ("compliance", "supervisor"),
    ("POST", "/console/templates/{file_name}/draft"): ("compliance", "supervisor"),
    ("POST", "/console/templates/{file_name}/lint"): ("compliance", "supervisor"),
    ("POST", "/console/versions/{version_id}/{action}"): ("compliance",),
    ("GET", "/console/strategy"): ("compliance", "supervisor"),
    ("POST", "/console/strategy/check"): ("compliance", "supervisor"),
    ("POST", "/console/policy/check"): ("compliance",),
    ("POST", "/console/strategy/draft"): ("compliance", "supervisor"),
    ("POST", "/console/policy/draft"): ("compliance",),
    ("GET", "/console/explain"): None,
    ("GET", "/console/admin"): (),
    ("POST", "/console/admin/{what}/{action}"): (),
    ("POST", "/console/logout"): None,
    ("POST", "/console/locale"): None,
}
OPEN_TO_ALL = {("GET", "/console/login"), ("POST", "/console/login"),
               ("GET", "/console/static/htmx.min.js")}  # fmt: skip
SAMPLE = {"view_id": "1", "task_id": "1", "action": "approve", "external_id": "C00000001",
          "file_name": "overdue_firm.zh-CN.txt", "version_id": "1", "what": "users"}  # fmt: skip


def _console_routes(served: Served) -> list[tuple[str, str]]:
    app = create_app(served.engine, served.settings, lambda: NOW, "https://lender.example")
    found = []
    for entry in app.routes:
        # FastAPI keeps an included router whole (its routes carry the router's own prefix).
        router = getattr(entry, "original_router", None)
        for route in router.routes if router is not None else [entry]:
            if isinstance(route, APIRoute) and route.path.startswith("/console"):
                found += [(method, route.path) for method in route.methods or ()]
    return sorted(found)


def test_every_console_route_is_classified_and_keeps_its_session_token_and_role(
    admin_console: Served,
) -> None:
    served = admin_console
    routes = _console_routes(served)
    unclassified = [r for r in routes if r not in ROLES and r not in OPEN_TO_ALL]
    assert not unclassified, f"say who may use {unclassified} in ROLES"
    assert not [r for r in ROLES if r not in routes], "ROLES names a route that is gone"
    with httpx.Client(base_url=served.url, follow_redirects=False) as anon:
        for method, path in ROLES:
            url = path.format(**SAMPLE)
            answer = anon.request(method, url, data={"csrf": "x"})
            assert answer.headers.get("location") == "/console/login", (method, path)
    for name in ("li", "zhao", "comp"):
        role = {"li": "agent", "zhao": "supervisor", "comp": "compliance"}[name]
        with httpx.Client(base_url=served.url, follow_redirects=False) as someone:
            assert _login(someone, name).status_code == 303
            token = _csrf(someone, "/console/work")
            for (method, path), roles in ROLES.items():
                if path == "/console/logout":
                    continue  # it would end the session the rest of the loop needs
                url = path.format(**SAMPLE)
                if method == "POST":
                    # Without the form token, refused before anything else is looked at.
                    assert someone.post(url, data={}).status_code == 403, (name, path)
                if roles is None or role in roles:
                    continue
                answer = someone.request(method, url, data={"csrf": token})
                assert answer.status_code == 403, (name, method, path, answer.status_code)
    with served.engine.connect() as conn:  # no role's refused request logged anyone out
        assert conn.execute(select(console_sessions.c.user_id)).first() is not None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_admin_adds_a_user_and_holds_a_provider_in_the_browser(
    admin_console: Served, tmp_path: Path
) -> None:
    """In chromium: the admin page in both languages; a user added from the keyboard alone
    (every field reached by Tab, named by its label) logs in; a provider held shows as held."""
    from playwright.sync_api import expect

    from tests.console.test_console import _shots, chinese_page

    served = admin_console
    shots = _shots(tmp_path)
    with chinese_page() as page:
        page.goto(served.url + "/console/login")
        page.fill("#name", "root")
        page.fill("#password", PASSWORD)
        page.click("#login")
        page.click("nav a[href='/console/admin']")
        expect(page.locator("h1")).to_contain_text("系统管理")
        page.locator("#add-user").get_by_label("用户名").focus()
        page.keyboard.type("小王")
        page.keyboard.press("Tab")  # role
        page.keyboard.press("Tab")  # team
        page.keyboard.type("east")
        page.keyboard.press("Tab")  # password
        page.keyboard.type("a long enough passphrase")
        page.keyboard.press("Enter")
        expect(page.locator("#admin-result")).to_contain_text("已完成")
        expect(page.locator("#users")).to_contain_text("小王")
        page.locator("#providers input[name=reason]").first.fill("运营商维护")
        page.locator("#providers button", has_text="暂停发送").first.click()
        expect(page.locator("#providers")).to_contain_text("held")
        page.screenshot(path=str(shots / "admin-zh.png"), full_page=True)
        page.click("nav a[href='/console/report']")
        expect(page.locator("#report")).to_contain_text("Funnel")
        page.select_option("#report-window", "2")
        page.click("#report-go")
        expect(page).to_have_url(re.compile(r"window=2"))
        expect(page.locator("#report")).to_contain_text("Funnel")  # computed aside, then shown
        page.screenshot(path=str(shots / "report-zh.png"), full_page=True)
        page.select_option("#locale-switch", "en")
        page.click("#locale-switch + button")
        page.goto(served.url + "/console/admin")
        expect(page.locator("h1")).to_contain_text("Admin")
        page.screenshot(path=str(shots / "admin-en.png"), full_page=True)
    assert "小王" in [u["name"] for u in users.list_users(served.engine)]
    users.login(served.engine, "小王", "a long enough passphrase", NOW)  # raises if refused


# --- accessibility: every form field is named by a label ----------------------------------


class _Fields(HTMLParser):
    """The form fields of a page, and which of them a label names."""

    SILENT = frozenset({"hidden", "submit", "button", "image", "reset"})

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, dict[str, str | None]]] = []  # (tag, attributes)
        self.labelled_ids: set[str] = set()
        self.inside_label = 0
        self.wrapped: set[int] = set()  # fields inside a <label>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "label":
            self.inside_label += 1
            if found.get("for"):
                self.labelled_ids.add(str(found["for"]))
        elif tag in ("input", "select", "textarea"):
            if tag == "input" and (found.get("type") or "text") in self.SILENT:
                return
            if self.inside_label:
                self.wrapped.add(len(self.fields))
            self.fields.append((tag, found))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self.inside_label:
            self.inside_label -= 1

    def unnamed(self) -> list[str]:
        return [
            f"<{tag} {' '.join(f'{k}={v!r}' for k, v in attrs.items())}>"
            for i, (tag, attrs) in enumerate(self.fields)
            if i not in self.wrapped
            and attrs.get("id") not in self.labelled_ids
            and not attrs.get("aria-label")
            and not attrs.get("aria-labelledby")
        ]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_form_field_on_every_page_is_named_by_a_label(admin_console: Served) -> None:
    """What a screen reader says for each field: a <label for>, a wrapping <label> or an
    aria-label, on every page an admin can open (and the login page), in both languages."""
    served = admin_console
    pages = ["/console/login"]
    with httpx.Client(base_url=served.url, follow_redirects=False) as root:
        assert _login(root, "root").status_code == 303
        pages += [path.format(**SAMPLE) for method, path in ROLES if method == "GET"]
        pages.append("/console/borrowers?q=C00000001")
        looked = 0
        for locale in ("zh", "en"):
            root.post("/console/locale", data={"csrf": _csrf(root), "locale": locale})
            for path in pages:
                answer = root.get(path)
                assert answer.status_code == 200, (path, answer.status_code)
                if "text/html" not in answer.headers.get("content-type", ""):
                    continue  # the report's JSON export
                fields = _Fields()
                fields.feed(answer.text)
                assert not fields.unnamed(), (locale, path, fields.unnamed())
                looked += len(fields.fields)
    assert looked > 40  # the pages do have forms
