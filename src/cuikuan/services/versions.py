"""Four eyes on the wording, the strategy and the contact policy: a change is a draft until a
second person approves it.

    draft = propose_template(engine, settings, "overdue_firm.zh-CN.txt", text, "user:sam", now)
    approve(engine, settings, draft, "user:cara", now)      # not the author: writes the file
    restore(engine, settings, old_version, "user:sam", now)  # an old text as a new draft

The plan and the sender read the template folder, the strategy file and the settings file's
`[policy]` table, which hold only approved text: a draft lives in `config_versions` and never
touches them. A policy draft is the whole `[policy]` table; approving it rewrites that table in
the settings file and nothing else (services/policy_file), read by every process started after
and by a running `serve` or `worker` at its next request or tick (settings.SettingsWatch). The strategy is
checked as the plan loads it (file, line and field for anything wrong). A draft is checked as `templates check` checks
the file (services.messages.check_draft) when it is proposed and again when it is approved; an
error stops it. Approving writes the file (all at once: a temporary file renamed over it), keeps
what it replaces as a version (the file's text before any approval here is recorded as
"from the folder"), and is audited. Who may propose and who may approve is the front end's
check (roles); that the approver is not the author is checked here.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from cuikuan.config_files import write_atomically
from cuikuan.errors import ConfigError, InputError, NotFound
from cuikuan.services import audit
from cuikuan.services.messages import check_draft, shipped_templates_dir, templates_dir
from cuikuan.services.policy_file import (
    check_policy_text,
    policy_section,
    settings_with_policy,
)
from cuikuan.services.strategy_file import check_strategy_text, shipped_strategy_text
from cuikuan.settings import Settings
from cuikuan.store.schema import config_versions

TEMPLATE = "template"
STRATEGY = "strategy"
POLICY = "policy"
MAX_SOURCE = 20_000


@dataclass(frozen=True)
class Version:
    id: int
    kind: str
    name: str
    state: str
    author: str
    created_at: datetime
    decided_by: str | None
    note: str
    content: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "state": self.state, "author": self.author,
                "created_at": self.created_at.isoformat(), "decided_by": self.decided_by,
                "note": self.note}  # fmt: skip


def propose_template(
    engine: Engine, settings: Settings, name: str, source: str, author: str, now: datetime,
    note: str = "",
) -> int:  # fmt: skip
    """A new draft of the template file `name`; refused, with every error, if the check finds
    any (the lint stops the save)."""
    return _propose(engine, settings, TEMPLATE, _file_name(name), source, author, now, note)


def propose_strategy(
    engine: Engine, settings: Settings, source: str, author: str, now: datetime, note: str = ""
) -> int:
    """A new draft of the strategy file; refused, naming file, line and field, if the plan
    could not load it."""
    return _propose(engine, settings, STRATEGY, _strategy_target(settings).name, source, author,
                    now, note)  # fmt: skip


def propose_policy(
    engine: Engine, settings: Settings, source: str, author: str, now: datetime, note: str = ""
) -> int:
    """A new draft of the settings file's `[policy]` table (the whole table, header included);
    refused, naming line and field, if the settings would not load with it."""
    return _propose(engine, settings, POLICY, _policy_target(settings).name, source, author,
                    now, note)  # fmt: skip


def _propose(
    engine: Engine, settings: Settings, kind: str, name: str, source: str, author: str,
    now: datetime, note: str,
) -> int:  # fmt: skip
    if len(source) > MAX_SOURCE:
        raise InputError(f"{name}: at most {MAX_SOURCE} characters")
    _refuse_errors(settings, kind, name, source)
    with engine.begin() as conn:
        draft = conn.execute(
            insert(config_versions).values(
                kind=kind, name=name, content=source, state="draft", author=author,
                created_at=now, note=note[:500],
            ).returning(config_versions.c.id)
        ).scalar_one()  # fmt: skip
        audit.record(conn, author, f"{kind}.propose", f"{kind}:{name}", None,
                     {"version": draft}, now)  # fmt: skip
    return int(draft)


def approve(
    engine: Engine, settings: Settings, version_id: int, approver: str, now: datetime
) -> Path:
    """The draft becomes the template file; returns the file written."""
    draft = _draft(engine, version_id)
    if draft.author == approver:
        raise InputError(
            f"version {version_id}: a change is approved by someone other than its author"
        )
    _refuse_errors(settings, draft.kind, draft.name, draft.content)
    target, text = _written(settings, draft)
    with engine.begin() as conn:
        _keep_folder_text(conn, settings, target, draft.kind, draft.name, now)
        conn.execute(
            update(config_versions)
            .where(config_versions.c.kind == draft.kind, config_versions.c.name == draft.name,
                   config_versions.c.state == "approved")
            .values(state="superseded")
        )  # fmt: skip
        changed = conn.execute(
            update(config_versions)
            .where(config_versions.c.id == version_id, config_versions.c.state == "draft")
            .values(state="approved", decided_by=approver, decided_at=now)
        ).rowcount  # fmt: skip
        if changed != 1:
            raise InputError(f"version {version_id} is no longer a draft")
        audit.record(conn, approver, f"{draft.kind}.approve", f"{draft.kind}:{draft.name}",
                     {"author": draft.author}, {"version": version_id}, now)  # fmt: skip
        write_atomically(target, text)  # last: a failed write rolls the approval back
    return target


def _written(settings: Settings, draft: Version) -> tuple[Path, str]:
    """The file an approved draft goes to, and its whole new text."""
    if draft.kind == STRATEGY:
        return _strategy_target(settings), draft.content
    if draft.kind == POLICY:
        try:
            return _policy_target(settings), settings_with_policy(settings, draft.content)
        except ConfigError as exc:
            raise InputError(exc.message) from None
    return _own_folder(settings) / draft.name, draft.content


def reject(engine: Engine, version_id: int, by: str, now: datetime, note: str = "") -> None:
    draft = _draft(engine, version_id)
    with engine.begin() as conn:
        conn.execute(
            update(config_versions).where(config_versions.c.id == version_id)
            .values(state="rejected", decided_by=by, decided_at=now, note=note[:500] or draft.note)
        )  # fmt: skip
        audit.record(conn, by, f"{draft.kind}.reject", f"{draft.kind}:{draft.name}", None,
                     {"version": version_id}, now)  # fmt: skip


def restore(engine: Engine, settings: Settings, version_id: int, author: str, now: datetime) -> int:
    """An earlier version's text as a new draft (approved like any other)."""
    old = version(engine, version_id)
    return _propose(engine, settings, old.kind, old.name, old.content, author, now,
                    note=f"restores version {version_id}")  # fmt: skip


def versions(
    engine: Engine, name: str | None = None, state: str | None = None, kind: str = TEMPLATE
) -> list[Version]:
    query = select(config_versions).where(config_versions.c.kind == kind)
    if name is not None:
        query = query.where(config_versions.c.name == Path(name).name)
    if state is not None:
        query = query.where(config_versions.c.state == state)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(config_versions.c.id.desc())).all()
    return [_version(r) for r in rows]


def version(engine: Engine, version_id: int) -> Version:
    with engine.connect() as conn:
        row = conn.execute(
            select(config_versions).where(config_versions.c.id == version_id)
        ).first()
    if row is None:
        raise NotFound(f"no version {version_id}")
    return _version(row)


def _draft(engine: Engine, version_id: int) -> Version:
    found = version(engine, version_id)
    if found.state != "draft":
        raise InputError(f"version {version_id} is {found.state}, not a draft")
    return found


def _version(row: Any) -> Version:
    return Version(row.id, row.kind, row.name, row.state, row.author, row.created_at, row.decided_by,
                   row.note, row.content)  # fmt: skip


def _file_name(name: str) -> str:
    plain = Path(name).name
    if plain != name or not plain.endswith(".txt") or plain.startswith("."):
        raise InputError(f"{name!r}: a template file name such as overdue_firm.zh-CN.txt")
    return plain


def _refuse_errors(settings: Settings, kind: str, name: str, source: str) -> None:
    if kind in (POLICY, STRATEGY):
        check, shown = (
            (check_policy_text, f"{name} [policy] (draft)") if kind == POLICY
            else (check_strategy_text, f"{name} (draft)")
        )  # fmt: skip
        try:
            check(settings, source, Path(shown))
        except ConfigError as exc:
            raise InputError("the check stops it: " + exc.message) from None
        return
    errors = [f for f in check_draft(settings, name, source).findings if f.severity == "error"]
    if errors:
        raise InputError("the check stops it: " + "; ".join(f.render() for f in errors))


def _strategy_target(settings: Settings) -> Path:
    return settings.path(settings.plan.strategy)


def _policy_target(settings: Settings) -> Path:
    if settings.source is None:
        raise InputError("the policy is changed in a settings file; these settings have none")
    return settings.source


def _own_folder(settings: Settings) -> Path:
    """The lender's template folder; made from the starter set the first time a change is
    approved while the settings still stand on it (the package's files are never written)."""
    folder = templates_dir(settings)
    if folder == shipped_templates_dir():
        folder = settings.path(settings.templates.dir)
        shutil.copytree(shipped_templates_dir(), folder, dirs_exist_ok=True)
    return folder


def _keep_folder_text(
    conn: Connection, settings: Settings, target: Path, kind: str, name: str, now: datetime
) -> None:
    """The file's text as a version before the first approval replaces it (so it can be restored)."""
    known = conn.execute(
        select(config_versions.c.id).where(
            config_versions.c.kind == kind, config_versions.c.name == name,
            config_versions.c.state.in_(("approved", "superseded")),
        )
    ).first()  # fmt: skip
    # No strategy file yet: the plan runs the shipped one, which is what the approval replaces.
    current = _current_text(settings, target, kind)
    if known is None and current is not None:
        conn.execute(
            insert(config_versions).values(
                kind=kind, name=name, content=current, state="superseded",
                author="folder", created_at=now, note="from the folder, before any approval here",
            )
        )  # fmt: skip


def _current_text(settings: Settings, target: Path, kind: str) -> str | None:
    """What an approval of `kind` replaces, as a version would hold it."""
    if kind == POLICY:
        return policy_section(settings)
    if target.is_file():
        return target.read_text("utf-8")
    return shipped_strategy_text() if kind == STRATEGY else None
