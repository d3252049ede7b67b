"""Templates from disk, rendered for real or sample borrowers, and linted.

findings = check_templates(settings)
preview = preview_template(settings, "due_today", engine=engine, customer="C001", as_of=day)
"""

from __future__ import annotations

import hashlib
import threading
import tomllib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Literal

from sqlalchemy import Engine

from cuikuan.config_files import locate_keys
from cuikuan.domain import lint
from cuikuan.domain.message_context import (
    Borrower,
    LenderFacts,
    LoanFacts,
    attributes,
    build_context,
    sample_contexts,
)
from cuikuan.domain.sms import Measurement, measure
from cuikuan.domain.templates import Renderer, TemplateFile, TemplateProblem, parse_template
from cuikuan.domain.tips import with_tip
from cuikuan.errors import ConfigError, CuikuanError, InputError, NotFound
from cuikuan.settings import Settings


@dataclass(frozen=True)
class FileFinding:
    file: str
    line: int
    rule: str
    message: str
    severity: str = "error"

    def render(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message}" + (
            " (warning)" if self.severity == "warning" else ""
        )


def shipped_templates_dir() -> Path:
    return Path(str(resources.files("cuikuan.resources").joinpath("templates")))


def templates_dir(settings: Settings) -> Path:
    """The settings' template folder. The shipped starter set stands in for the default folder
    ("templates") while it does not exist; a folder the settings name and that is not there is a
    settings error (a typo must not send the starter wording)."""
    folder = settings.path(settings.templates.dir)
    if folder.is_dir():
        return folder
    if settings.templates.dir == "templates":
        return shipped_templates_dir()
    where = str(settings.source or "settings")
    if settings.source is not None and settings.source.is_file():
        line = locate_keys(settings.source.read_text("utf-8")).get(("templates", "dir"), 1)
        where = f"{settings.source}:{line}"
    raise ConfigError(
        f"{where}: templates.dir: no folder {folder} (expected a folder of templates)"
    )


def lender_facts(settings: Settings) -> LenderFacts:
    lender = settings.lender
    return LenderFacts(
        lender.name,
        lender.signature,
        lender.hotline,
        lender.online_service_url,
        lender.wechat,
        lender.app_name,
        lender.payment_link,
    )


def lint_rules(settings: Settings) -> lint.LintRules:
    return lint.LintRules(
        pack=settings.policy.jurisdiction,
        signature=settings.lender.signature,
        max_segments=settings.templates.max_segments,
        max_cn_billing_units=settings.templates.max_cn_billing_units,
        require_opt_out=settings.policy.opt_out_required,
        debt_collector=settings.policy.debt_collector,
    )


def wording_matcher(settings: Settings | None) -> lint.WordingMatcher:
    lists = []
    languages: tuple[Literal["zh", "en"], ...] = ("zh", "en")
    for language in languages:
        text = (
            resources.files("cuikuan.resources")
            .joinpath("lint", f"{language}.toml")
            .read_text("utf-8")
        )
        lists.append(lint.parse_wordlist(language, tomllib.loads(text), f"{language}.toml"))
    if settings is not None:
        extra = settings.path(settings.templates.wording_dir)
        for path in sorted(extra.glob("*.toml")) if extra.is_dir() else []:
            # A file's language is told by its name: en*.toml is English, anything else Chinese.
            extra_language: Literal["zh", "en"] = "en" if path.stem.startswith("en") else "zh"
            try:
                data = tomllib.loads(path.read_text("utf-8"))
                lists.append(lint.parse_wordlist(extra_language, data, str(path)))
            except (tomllib.TOMLDecodeError, ValueError) as exc:
                raise ConfigError(f"{path}: {exc}") from None
    return lint.WordingMatcher(lint.merge(lists))


def load_templates(folder: Path) -> tuple[list[TemplateFile], list[FileFinding]]:
    templates, findings = [], []
    for path in sorted(folder.glob("*.txt")):
        try:
            templates.append(parse_template(str(path), path.read_text("utf-8")))
        except TemplateProblem as exc:
            findings.append(FileFinding(exc.file, exc.line, exc.rule, exc.message))
        except UnicodeDecodeError:
            findings.append(FileFinding(str(path), 1, "encoding", "templates are UTF-8 text"))
    return templates, findings


def check_templates(settings: Settings) -> list[FileFinding]:
    templates, findings = load_templates(templates_dir(settings))
    renderer = Renderer({t.path: t for t in templates})
    matcher, rules, lender = wording_matcher(settings), lint_rules(settings), lender_facts(settings)
    for template in templates:
        findings += _check_one(template, renderer, matcher, rules, lender)
    findings += _missing_locales(templates, settings.templates.locales)
    return sorted(findings, key=lambda f: (f.file, f.line, f.rule))


def failing_templates(settings: Settings) -> dict[tuple[str, str], str]:
    """(template, locale) the lint finds an error in, each with its first error: the plan never
    sends them (their candidates are suppressed, saying why)."""
    templates, _ = load_templates(templates_dir(settings))
    renderer = Renderer({t.path: t for t in templates})
    matcher, rules, lender = wording_matcher(settings), lint_rules(settings), lender_facts(settings)
    failing: dict[tuple[str, str], str] = {}
    for template in templates:
        for f in _check_one(template, renderer, matcher, rules, lender):
            if f.severity == "error" and template.key not in failing:
                failing[template.key] = f"{f.rule}: {f.message} ({f.file}:{f.line})"
    return failing


_LINT_MEMO: dict[str, tuple[lint.WordingMatcher, dict[tuple[str, str], str]]] = {}
_LINT_LOCK = threading.Lock()


def lint_state(settings: Settings) -> tuple[lint.WordingMatcher, dict[tuple[str, str], str]]:
    """The wording matcher and `failing_templates`, remembered in this process for as long as
    the settings, the templates and the wording files are the same, by content: a server's
    explain would otherwise lint every template on every request."""
    key = _lint_key(settings)
    with _LINT_LOCK:
        found = _LINT_MEMO.get(key)
    if found is not None:
        return found[0], dict(found[1])
    made = (wording_matcher(settings), failing_templates(settings))
    with _LINT_LOCK:
        if len(_LINT_MEMO) >= 8:
            _LINT_MEMO.pop(next(iter(_LINT_MEMO)))
        _LINT_MEMO[key] = made
    return made[0], dict(made[1])


def _lint_key(settings: Settings) -> str:
    digest = hashlib.blake2b(settings.model_dump_json().encode(), digest_size=16)
    wording = settings.path(settings.templates.wording_dir)
    for folder, pattern in ((templates_dir(settings), "*.txt"), (wording, "*.toml")):
        for path in sorted(folder.glob(pattern)) if folder.is_dir() else []:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _check_one(
    template: TemplateFile,
    renderer: Renderer,
    matcher: lint.WordingMatcher,
    rules: lint.LintRules,
    lender: LenderFacts,
) -> list[FileFinding]:
    found: dict[tuple[str, str], FileFinding] = {}
    for context in sample_contexts(lender, template.locale):
        try:
            text = renderer.render(template, context)
        except TemplateProblem as exc:
            return [FileFinding(exc.file, exc.line, exc.rule, exc.message)]
        checks = lint.lint_text(text, rules, matcher, template.tone)
        if template.channel != "sms":
            checks = [f for f in checks if f.rule not in {"length", "required:signature"}]
        for f in checks:
            banned = f.rule.startswith("banned:")
            line = _line_of(template, matcher) if banned else template.body_line
            # One finding per rule (the first sample, the longest, shows the worst case).
            key = (f.rule, f.message if banned else f.severity)
            found.setdefault(key, FileFinding(template.path, line, f.rule, f.message, f.severity))
    return list(found.values())


def _line_of(template: TemplateFile, matcher: lint.WordingMatcher) -> int:
    for offset, line in enumerate(template.body.splitlines()):
        if matcher.find(line):
            return template.body_line + offset
    return template.body_line


def _missing_locales(templates: list[TemplateFile], locales: tuple[str, ...]) -> list[FileFinding]:
    have: dict[str, dict[str, TemplateFile]] = {}
    for t in templates:
        have.setdefault(t.name, {})[t.locale] = t
    out = []
    for name, by_locale in sorted(have.items()):
        some = next(iter(by_locale.values()))
        for locale in locales:
            if locale not in by_locale:
                out.append(
                    FileFinding(
                        some.path,
                        1,
                        "missing-locale",
                        f"template {name} has no {locale} version ({name}.{locale}.txt)",
                    )
                )
    return out


@dataclass(frozen=True)
class DraftCheck:
    findings: list[FileFinding]
    text: str  # rendered for the first sample borrower ("" when it cannot be rendered)
    measurement: Measurement | None
    cost: Decimal | None = None  # billing units times [plan] price_per_billing_unit
    borrower: str | None = None  # the real borrower it was rendered for, if one was asked
    borrower_problem: str = ""  # why it could not be rendered for them


def check_draft(
    settings: Settings,
    file_name: str,
    source: str,
    real: tuple[Engine, str, date] | None = None,
) -> DraftCheck:
    """A template's text as someone edits it, checked exactly as `templates check` checks the
    file (the same rules, samples and wording lists), and rendered for a sample borrower, or
    with `real` (engine, customer id, day) for that borrower's most overdue loan that day."""
    try:
        template = parse_template(file_name, source)
    except TemplateProblem as exc:
        return DraftCheck([FileFinding(exc.file, exc.line, exc.rule, exc.message)], "", None)
    templates, _ = load_templates(templates_dir(settings))
    renderer = Renderer({**{t.path: t for t in templates}, template.path: template})
    matcher, rules, lender = wording_matcher(settings), lint_rules(settings), lender_facts(settings)
    findings = _check_one(template, renderer, matcher, rules, lender)
    context, borrower, problem = sample_contexts(lender, template.locale)[0], None, ""
    if real is not None:
        engine, customer, day = real
        try:
            context, _ = real_context(engine, settings, customer, day)
            context["locale"], borrower = template.locale, customer
        except CuikuanError as exc:
            problem = exc.message
    try:
        text = renderer.render(template, context)
    except TemplateProblem as exc:
        return DraftCheck(
            findings, "", None, borrower=borrower, borrower_problem=problem or str(exc)
        )
    measured = measure(text)
    cost = measured.cn_billing_units * Decimal(settings.plan.price_per_billing_unit)
    return DraftCheck(findings, text, measured, cost, borrower, problem)


def list_template_files(settings: Settings) -> list[TemplateFile]:
    templates, _ = load_templates(templates_dir(settings))
    return templates


def lint_bare_text(text: str, settings: Settings | None, pack: str | None) -> list[lint.Finding]:
    rules = lint_rules(settings) if settings is not None else lint.LintRules()
    if pack:
        rules = lint.LintRules(pack=pack, require_opt_out=pack == "us")  # type: ignore[arg-type]
    return [
        *lint.wording_findings(text, wording_matcher(settings)),
        *lint.required_findings(text, rules),
    ]


@dataclass(frozen=True)
class Preview:
    template: TemplateFile
    text: str
    measurement: Measurement
    customer: str | None


def find_template(settings: Settings, name: str, locale: str) -> TemplateFile:
    templates, problems = load_templates(templates_dir(settings))
    match = [t for t in templates if t.name == name]
    if not match:
        bad = [p for p in problems if Path(p.file).name.startswith(f"{name}.")]
        if bad:
            raise InputError(bad[0].render())
        raise NotFound(
            f"no template {name!r}; templates: {', '.join(sorted({t.name for t in templates}))}"
        )
    for t in match:
        if t.locale == locale:
            return t
    raise NotFound(
        f"template {name!r} has no {locale} version (has {', '.join(t.locale for t in match)})"
    )


def preview_template(
    settings: Settings,
    name: str,
    *,
    engine: Engine | None = None,
    customer: str | None = None,
    as_of: date | None = None,
    locale: str | None = None,
) -> Preview:
    lender = lender_facts(settings)
    if customer is not None and engine is not None and as_of is not None:
        context, customer_locale = real_context(engine, settings, customer, as_of)
        locale = locale or customer_locale
        context["locale"] = locale
    else:
        locale = locale or settings.defaults.locale
        context = sample_contexts(lender, locale)[0]
    template = find_template(settings, name, locale)
    try:
        text = Renderer({template.path: template}).render(template, context)
    except TemplateProblem as exc:
        raise InputError(str(exc)) from None
    if settings.templates.tips and template.tone in settings.templates.tips_on_tones:
        text = with_tip(text, load_tips(locale), key=f"{customer or 'sample'}/{as_of}")
    return Preview(template, text, measure(text), customer)


def load_tips(locale: str) -> list[str]:
    data = tomllib.loads(
        resources.files("cuikuan.resources").joinpath("tips.toml").read_text("utf-8")
    )
    return list(data.get("zh" if locale.startswith("zh") else "en", []))


def real_context(
    engine: Engine, settings: Settings, customer: str, as_of: date
) -> tuple[dict[str, object], str]:
    """The context for a customer's most overdue open loan (else the next one due)."""

    from sqlalchemy import select

    from cuikuan.services.portfolio import customer_view
    from cuikuan.store.schema import customers, loans

    view = customer_view(engine, customer, as_of, settings)
    open_loans = view.loans.filter(~view.loans.get_column("paid_off"))
    if open_loans.height == 0:
        raise NotFound(f"customer {customer!r} has nothing outstanding on {as_of}")
    loan = open_loans.sort(["dpd", "outstanding"], descending=True).row(0, named=True)
    with engine.connect() as conn:
        locale, attrs_json = conn.execute(
            select(customers.c.locale, customers.c.attributes).where(
                customers.c.external_id == customer
            )
        ).one()
        product, loan_attrs = conn.execute(
            select(loans.c.product, loans.c.attributes).where(
                loans.c.external_id == loan["external_id"]
            )
        ).one()
    attrs = attributes(attrs_json, loan_attrs)
    locale = locale or settings.defaults.locale
    borrower = Borrower(view.name, view.phones[0] if view.phones else None, attrs)
    facts = LoanFacts(
        loan["external_id"],
        product,
        loan["currency"],
        loan["overdue_amount"],
        loan["outstanding"],
        loan["next_due_amount"],
        loan["next_due_date"],
        loan["days_to_due"],
        loan["dpd"],
    )
    return build_context(borrower, facts, lender_facts(settings), locale), locale
