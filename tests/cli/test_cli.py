"""The commands as a new user runs them: real processes, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CUIKUAN_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cuikuan", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    here = tmp_path_factory.mktemp("cli")
    assert run(["init", "."], here).returncode == 0
    made = run(
        [
            "sim",
            "generate",
            "--accounts",
            "400",
            "--seed",
            "5",
            "--as-of",
            "2026-11-29",
            "--out",
            "ledger.csv",
            "--payments-out",
            "payments.csv",
        ],
        here,
    )
    assert made.returncode == 0, made.stderr
    return here


def test_init_writes_settings_and_database(tmp_path: Path) -> None:
    done = run(["init", "book"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        (tmp_path / "book" / "cuikuan.toml")
        .read_text(encoding="utf-8")
        .startswith("# cuikuan settings")
    )
    assert (tmp_path / "book" / "cuikuan.db").exists()
    again = run(["init", "book"], tmp_path)
    assert "keeping it" in again.stdout


def test_import_then_portfolio_as_json(workdir: Path) -> None:
    done = run(["import", "ledger.csv", "payments.csv"], workdir)
    assert done.returncode == 0, done.stderr
    assert "kept as custom attributes: 渠道来源" in done.stdout
    again = run(["import", "--json", "ledger.csv"], workdir)
    assert json.loads(again.stdout)[0]["changed"] == {
        "customers": 0,
        "phone numbers": 0,
        "loans": 0,
        "instalments": 0,
    }
    shown = run(["portfolio", "--as-of", "2026-11-29", "--json"], workdir)
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    buckets = {b["bucket"]: b for b in report["buckets_minor_units"]}
    assert list(buckets) == ["current", "M1", "M2", "M3", "M3+"]
    assert sum(b["accounts"] for b in buckets.values()) + report["closed_accounts"] == 400
    assert buckets["M1"]["overdue"] > 0
    table = run(["portfolio", "--as-of", "2026-11-29"], workdir)
    assert "M3+" in table.stdout and "closed (fully paid) accounts" in table.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["import", "missing.csv"], 3, "missing.csv: no such file"),
        (["import", "bad.csv"], 4, "bad.csv:2: 应还金额: amount must not be negative (got '-3')"),
        (["import", "--kind", "loans", "ledger.csv"], 3, "--kind 'loans'"),
        (["import", "--map", "oops", "ledger.csv"], 3, "expected COLUMN=FIELD"),
        (["portfolio", "--as-of", "2026-02-30"], 3, "no such date"),
        (["account", "NOBODY"], 5, "no customer 'NOBODY' in the ledger"),
    ],
)
def test_user_errors_print_one_message_and_exit_non_zero(
    workdir: Path, args: list[str], code: int, message: str
) -> None:
    (workdir / "bad.csv").write_text(
        "客户编号,姓名,手机号,借据号,期数,应还日期,应还金额\nC1,张三,13800138000,L1,1,2026-11-29,-3\n",
        encoding="utf-8",
    )
    done = run(args, workdir)
    assert done.returncode == code, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_broken_settings_file_names_file_line_and_field(tmp_path: Path) -> None:
    run(["init", "."], tmp_path)
    path = tmp_path / "cuikuan.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace('currency = "CNY"', 'currency = "RMBX"'),
        encoding="utf-8",
    )
    done = run(["portfolio"], tmp_path)
    assert done.returncode == 2
    assert (
        "cuikuan.toml:" in done.stderr
        and "defaults.currency: expected an ISO 4217 currency code" in done.stderr
    )
    assert "Traceback" not in done.stderr


def test_without_settings_the_user_is_told_to_init(tmp_path: Path) -> None:
    done = run(["portfolio"], tmp_path)
    assert done.returncode == 2
    assert "run `cuikuan init`" in done.stderr


def test_environment_overrides_the_database(workdir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    done = run(
        ["portfolio", "--json"], workdir, env={"CUIKUAN_DATABASE__URL": f"sqlite:///{other}"}
    )
    assert done.returncode == 0, done.stderr
    assert other.exists()
    assert json.loads(done.stdout)["closed_accounts"] == 0


def test_help_explains_every_command(tmp_path: Path) -> None:
    top = run(["--help"], tmp_path)
    for command in ("init", "import", "portfolio", "sim"):
        assert command in top.stdout
    assert "all or nothing" in run(["import", "--help"], tmp_path).stdout


def test_account_shows_a_customer_with_loans(workdir: Path) -> None:
    run(["import", "ledger.csv"], workdir)
    shown = run(["account", "C00000001", "--as-of", "2026-11-29", "--json"], workdir)
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["phones"][0].startswith("+86")
    assert view["loans"] and view["dpd"] == max(
        [0] + [x["dpd"] for x in view["loans"] if not x["paid_off"]]
    )
    assert "DPD" in run(["account", "C00000001"], workdir).stdout


def test_sms_measure_prints_json_parts_and_reads_jsonl(tmp_path: Path) -> None:
    done = run(
        ["sms", "measure", "您好" * 40, "--signature", "【富勤金融】", "--json", "--parts"],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["encoding"] == "UCS-2" and result["characters"] == 86 and result["segments"] == 2
    assert result["cn_billing_units"] == 2 and "".join(result["parts"]).startswith("【富勤金融】")
    lines = '{"text": "hello"}\n{"text": "€", "signature": "X"}\n'
    many = subprocess.run(
        [sys.executable, "-m", "cuikuan", "sms", "measure", "--jsonl"],
        input=lines,
        capture_output=True,
        text=True,
        check=False,
    )
    assert [json.loads(x)["units"] for x in many.stdout.splitlines()] == [5, 3]
    bad = subprocess.run(
        [sys.executable, "-m", "cuikuan", "sms", "measure", "--jsonl"],
        input="nope\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 3 and "<stdin>:1:" in bad.stderr


def test_templates_check_passes_on_the_starter_set_and_fails_on_a_bad_template(
    tmp_path: Path,
) -> None:
    assert run(["init", "."], tmp_path).returncode == 0
    assert (tmp_path / "templates" / "due_today.zh-CN.txt").exists()
    ok = run(["templates", "check"], tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (tmp_path / "templates" / "evil.zh-CN.txt").write_text(
        "---\nname: evil\nchannel: sms\ntone: firm\ndescription: x\n---\n{{ signature }}{{ ''.__class__.__mro__ }}\n",
        encoding="utf-8",
    )
    bad = run(["templates", "check"], tmp_path)
    assert bad.returncode == 1
    assert "evil.zh-CN.txt:7: unsafe: " in bad.stdout
    assert "evil.zh-CN.txt:1: missing-locale: template evil has no en version" in bad.stdout
    assert "Traceback" not in bad.stderr


def test_templates_check_jsonl_lints_bare_texts(tmp_path: Path) -> None:
    lines = '{"text": "再不还款就上门催收"}\n{"text": "逾期记录将依规报送征信中心"}\n'
    done = subprocess.run(
        [sys.executable, "-m", "cuikuan", "templates", "check", "--jsonl"],
        input=lines,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    results = [json.loads(x) for x in done.stdout.splitlines()]
    assert results[0]["ok"] is False and results[0]["findings"][0]["rule"] == "banned:threat"
    assert results[1] == {"ok": True, "findings": []}


def test_templates_preview_for_a_sample_and_a_real_customer(workdir: Path) -> None:
    sample = run(["templates", "preview", "due_today", "--json"], workdir)
    assert sample.returncode == 0, sample.stderr
    shown = json.loads(sample.stdout)
    assert shown["text"].startswith("【富勤金融】") and shown["cn_billing_units"] == 1
    run(["import", "ledger.csv"], workdir)
    real = run(
        [
            "templates",
            "preview",
            "overdue_gentle",
            "--customer",
            "C00000001",
            "--as-of",
            "2026-11-29",
            "--json",
        ],
        workdir,
    )
    assert real.returncode == 0, real.stderr
    assert json.loads(real.stdout)["text"].startswith("【富勤金融】")
    missing = run(["templates", "preview", "no_such_template"], workdir)
    assert missing.returncode == 5 and "no template 'no_such_template'" in missing.stderr


def test_plan_dry_run_export_then_plan_and_explain(workdir: Path) -> None:
    run(["import", "ledger.csv"], workdir)
    dry = run(
        ["plan", "--as-of", "2026-11-30", "--dry-run", "--export", "plan.jsonl", "--json"], workdir
    )
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["written"] == 0 and report["steps"]
    exported = [
        json.loads(x) for x in (workdir / "plan.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert exported and all("status" in x and "reason" in x for x in exported)
    done = run(["plan", "--as-of", "2026-11-30"], workdir)
    assert done.returncode == 0 and "outbox:" in done.stdout
    again = run(["plan", "--as-of", "2026-11-30", "--json"], workdir)
    assert json.loads(again.stdout)["written"] == 0
    someone = next(x["customer"] for x in exported if x["status"] == "planned")
    told = run(["explain", someone, "--as-of", "2026-11-30", "--json"], workdir)
    assert told.returncode == 0, told.stderr
    assert json.loads(told.stdout)["decision"]["step"]
    assert run(["explain", "NOBODY"], workdir).returncode == 5


def test_reply_dry_run_prints_the_reading(workdir: Path) -> None:
    done = run(
        [
            "reply",
            "13800138000",
            "我下周一还500",
            "--dry-run",
            "--json",
            "--at",
            "2026-11-29 02:00",
        ],
        workdir,
    )
    assert done.returncode == 0, done.stderr
    reading = json.loads(done.stdout)
    assert (reading["intent"], reading["date"], reading["amount"]) == (
        "promise_to_pay",
        "2026-11-30",
        "500",
    )
    assert run(["reply", "12345", "退订"], workdir).returncode == 3


def test_tasks_from_a_reply_are_listed_taken_and_closed(workdir: Path) -> None:
    run(["import", "ledger.csv"], workdir)
    number = json.loads(run(["account", "C00000002", "--json"], workdir).stdout)["phones"][0]
    assert run(["reply", number, "我要人工客服"], workdir).returncode == 0
    listed = json.loads(run(["tasks", "list", "--json", "--kind", "call_back"], workdir).stdout)
    assert listed and listed[0]["customer"] == "C00000002"
    task = str(listed[0]["id"])
    assert run(["tasks", "take", task, "--as", "agent"], workdir).returncode == 0
    assert run(["tasks", "note", task, "called, no answer"], workdir).returncode == 0
    assert run(["tasks", "done", task], workdir).returncode == 0
    assert run(["tasks", "done", "99999"], workdir).returncode == 5


def test_plans_create_and_list(workdir: Path) -> None:
    run(["import", "ledger.csv"], workdir)
    bad = run(
        ["plans", "create", "L000000001", "--schedule", "tomorrow:5", "--by", "agent"], workdir
    )
    assert bad.returncode == 3 and "expected DATE:AMOUNT" in bad.stderr
    missing = run(
        ["plans", "create", "NOLOAN", "--schedule", "2030-01-05:500", "--by", "agent"], workdir
    )
    assert missing.returncode == 5
    listed = run(["plans", "list", "--json"], workdir)
    assert listed.returncode == 0 and isinstance(json.loads(listed.stdout), list)


def test_importing_a_payment_marks_the_promise_it_keeps(workdir: Path, tmp_path: Path) -> None:
    import sqlite3
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    assert run(["init", "."], tmp_path).returncode == 0
    assert run(["import", str(workdir / "ledger.csv")], tmp_path).returncode == 0
    account = json.loads(run(["account", "C00000003", "--json"], tmp_path).stdout)
    said = datetime(2026, 12, 1, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert (
        run(
            ["reply", account["phones"][0], "明天还", "--at", said.isoformat()], tmp_path
        ).returncode
        == 0
    )
    paid_at = said + timedelta(minutes=5)
    (tmp_path / "paid.csv").write_text(
        "还款流水号,借据号,还款时间,还款金额\n"
        f"PK-1,{account['loans'][0]['loan']},{paid_at:%Y-%m-%d %H:%M:%S},100.00\n",
        encoding="utf-8",
    )
    db = sqlite3.connect(tmp_path / "cuikuan.db")
    assert db.execute("SELECT status FROM promises").fetchall() == [("pending",)]
    imported = (said + timedelta(hours=1)).isoformat()
    assert run(["import", "paid.csv", "--at", imported], tmp_path).returncode == 0
    assert db.execute("SELECT status FROM promises").fetchall() == [("kept",)]


def test_report_prints_json_writes_html_and_refuses_a_backwards_range(
    workdir: Path, tmp_path: Path
) -> None:
    run(["import", "ledger.csv"], workdir)
    run(["plan", "--as-of", "2026-11-30"], workdir)
    done = run(
        ["report", "--from", "2026-11-30", "--to", "2026-12-01", "--json",
         "--html", str(tmp_path / "r.html")],
        workdir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {"steps", "uplift", "roll_rates", "delivery", "daily"} <= set(data)
    assert "效果报告" in (tmp_path / "r.html").read_text(encoding="utf-8")
    backwards = run(["report", "--from", "2026-12-05", "--to", "2026-12-01"], workdir)
    assert backwards.returncode == 3 and "after" in backwards.stderr


def _smsc_stats(control: int) -> dict[str, Any]:
    """The running simulator's counters, from its control port."""
    import socket

    with socket.create_connection(("127.0.0.1", control), timeout=5) as sock:
        sock.sendall(b'{"cmd": "stats"}\n')
        answer: dict[str, Any] = json.loads(sock.makefile("rb").readline())
    return answer


@pytest.mark.parametrize("receivers", ["0", "1"], ids=["transceivers", "separate-binds"])
def test_the_smpp_path_as_a_user_runs_it(workdir: Path, tmp_path: Path, receivers: str) -> None:
    """cuikuan smsc in one process; send and listen in others; a reply injected with smsc-mo
    opts the number out. On transceivers, and on separate binds (send then sends on a
    transmitter and hears its receipts on a receiver; listen holds a receiver alone)."""
    import socket
    import sqlite3
    import time

    def free() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    port, control = free(), free()
    env = {"CUIKUAN_CHANNELS__SMS": "smpp", "CUIKUAN_SMPP__PORT": str(port),
           "CUIKUAN_SMPP__RECEIVERS": receivers}  # fmt: skip
    assert run(["init", "."], tmp_path).returncode == 0
    assert run(["import", str(workdir / "ledger.csv")], tmp_path).returncode == 0
    assert run(["plan", "--as-of", "2026-11-30"], tmp_path).returncode == 0
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CUIKUAN_")}
    smsc = subprocess.Popen(
        [sys.executable, "-m", "cuikuan", "smsc", "--port", str(port), "--control-port", str(control)],
        cwd=tmp_path, env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert smsc.stdout is not None and json.loads(smsc.stdout.readline())["smpp"][1] == port
        # Waits until every receipt is in (at most 60 s): no fixed pause that load outlasts.
        sent = run(["send", "--now", "2026-11-30T03:00:00", "--wait-receipts", "60", "--json"],
                   tmp_path, env)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        report = json.loads(sent.stdout)
        assert report["sent"] > 0 and report["delivered"] + report["undelivered"] == report["sent"]
        db = sqlite3.connect(tmp_path / "cuikuan.db")
        (number,) = db.execute(
            "SELECT recipient FROM outbox WHERE status = 'delivered' LIMIT 1"
        ).fetchone()
        listen = subprocess.Popen(
            [sys.executable, "-m", "cuikuan", "listen", "--seconds", "90"],
            cwd=tmp_path, env=clean | env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        # Conditions with deadlines, not pauses: the reply goes once listen's bind is up (one
        # sent before would be kept by the SMSC and come as well), and listen is stopped once the
        # opt-out is recorded.
        deadline = time.monotonic() + 60
        while _smsc_stats(control).get("hearing", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        mo = run(["smsc-mo", number, "退订", "--control", f"127.0.0.1:{control}"], tmp_path)
        assert mo.returncode == 0 and "1 bound session" in mo.stdout, mo.stderr
        stopped: list[tuple[str]] = []
        while not stopped and time.monotonic() < deadline:
            stopped = db.execute(
                "SELECT channel FROM number_stops WHERE address = ? AND reason = 'opt_out'",
                (number,),
            ).fetchall()
            time.sleep(0.2)
        listen.send_signal(signal.SIGINT)
        _, err = listen.communicate(timeout=30)
        assert listen.returncode == 0, err
        assert "opt_out" in err
        assert stopped == [("sms",)]
        counts = json.loads(run(["outbox", "--json"], tmp_path).stdout)
        assert {c["status"] for c in counts} <= {
            "delivered",
            "undelivered",
            "held",
            "planned",
            "expired",
            "suppressed",
        }
        health = json.loads(run(["outbox", "providers", "--json"], tmp_path).stdout)
        assert [(h["provider"], h["state"], h["inbound_waiting"]) for h in health] == [
            ("smpp", "up", 0)
        ]
    finally:
        smsc.terminate()
        smsc.wait(10)


def test_send_every_keeps_dispatching_until_sigterm(workdir: Path, tmp_path: Path) -> None:
    import signal
    import threading
    import time

    assert run(["init", "."], tmp_path).returncode == 0
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CUIKUAN_")}
    loop = subprocess.Popen(
        [sys.executable, "-m", "cuikuan", "send", "--every", "1"],
        cwd=tmp_path, env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # Wait for two rounds (however slow the machine), then ask it to stop.
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(loop.stderr.readline, "")))  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 60
    while sum(" sent " in x for x in lines) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    loop.send_signal(signal.SIGTERM)
    loop.wait(timeout=30)
    reader.join(timeout=30)
    err = "".join(lines)
    assert loop.returncode == 0, err
    rounds = [line for line in err.splitlines() if " sent " in line]
    assert len(rounds) >= 2 and err.strip().endswith("stopped")
    assert run(["send", "--every", "5", "--now", "2026-11-30T03:00:00"], tmp_path).returncode == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["imprt", "x.csv"], "No such command 'imprt'. Did you mean 'import'?"),
        (["import"], "Missing argument 'files'."),
        (["sim", "generate", "--accounts", "many"], "Invalid value for '--accounts'"),
    ],
)
def test_usage_mistakes_get_clicks_message_not_a_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = run(args, tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_the_export_is_written_part_by_part_with_one_header(tmp_path: Path) -> None:
    import polars as pl

    from cuikuan.cli.plan import _Export

    parts = [
        pl.DataFrame({"customer": ["C1", "C2"], "external_id": ["L1", "L2"], "x": [1, 2]}),
        pl.DataFrame({"customer": ["C3"], "external_id": ["L3"], "x": [3]}),
    ]
    for name in ("plan.csv", "plan.jsonl"):
        with _Export(tmp_path / name) as sink:
            for part in parts:
                sink(part)
        assert sink.rows == 3
        read = pl.read_csv if name.endswith(".csv") else pl.read_ndjson
        expected = [{"customer": f"C{n}", "loan": f"L{n}"} for n in (1, 2, 3)]
        assert read(tmp_path / name).to_dicts() == expected


def test_a_plan_in_a_year_without_holiday_data_warns_and_never_fails(
    workdir: Path, tmp_path: Path
) -> None:
    run(["import", "ledger.csv"], workdir)
    for stop in ("working", "stop"):
        env = {"CUIKUAN_POLICY__UNKNOWN_HOLIDAYS": stop}
        done = run(["plan", "--as-of", "2027-01-04", "--dry-run", "--json"], workdir, env)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        assert any("2027" in w for w in json.loads(done.stdout)["warnings"])
    december = run(["plan", "--as-of", "2026-12-04", "--dry-run"], workdir)
    assert december.returncode == 0 and "no cn holiday data for 2027" in december.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[cn.2027]\nholidays = ["2027-01-01"]\nworkdays = ["2027-02-30"]\n', "utf-8")
    refused = run(["holidays", "import", str(bad)], workdir)
    assert refused.returncode == 2 and f"{bad}:3: cn.2027.workdays[0]" in refused.stderr
    good = tmp_path / "2027.toml"
    good.write_text(
        '[cn.2027]\nholidays = ["2027-01-01", "2027-02-05..2027-02-11"]\n'
        'workdays = ["2027-02-14"]\n',
        "utf-8",
    )
    assert run(["holidays", "import", str(good)], workdir).returncode == 0
    shown = json.loads(run(["holidays", "show", "--year", "2027", "--json"], workdir).stdout)
    assert shown["years"][0]["source"] == "the lender's holiday file"
    assert "2027-02-08" in shown["years"][0]["off"]
    assert shown["years"][0]["working"] == ["2027-02-14"]
    quiet = run(["plan", "--as-of", "2026-12-04", "--dry-run"], workdir)
    assert "holiday data" not in quiet.stderr
    (workdir / "holidays.toml").unlink()


def test_every_recording_command_takes_at_in_iso_8601(workdir: Path) -> None:
    run(["import", "ledger.csv"], workdir)
    read = run(
        ["reply", "13800138000", "我想分期", "--at", "2026-12-01T10:00:00+08:00", "--json"],
        workdir,
    )
    assert read.returncode == 0, read.stderr
    bad = run(["reply", "13800138000", "hi", "--at", "next tuesday"], workdir)
    assert bad.returncode == 3 and "--at 'next tuesday'" in bad.stderr
    for args in (
        ["plan", "--help"],
        ["send", "--help"],
        ["import", "--help"],
        ["tasks", "take", "--help"],
        ["tasks", "done", "--help"],
        ["plans", "create", "--help"],
        ["outbox", "resolve", "--help"],
    ):
        assert "--at" in run(args, workdir).stdout, args
    past = run(
        ["plans", "create", "L000000001", "--schedule", "2026-12-10:1", "--by", "a",
         "--at", "2026-12-01T09:00Z"],
        workdir,
    )  # fmt: skip
    assert "Traceback" not in past.stderr


def test_a_template_that_fails_the_lint_is_never_planned(tmp_path: Path) -> None:
    assert run(["init", "."], tmp_path).returncode == 0
    made = run(["sim", "generate", "--accounts", "300", "--seed", "3", "--as-of", "2026-11-29",
                "--out", "ledger.csv"], tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert run(["import", "ledger.csv"], tmp_path).returncode == 0
    clean = run(["plan", "--as-of", "2026-11-30", "--dry-run", "--json"], tmp_path)
    assert clean.returncode == 0, clean.stderr
    for name in ("overdue_firm", "overdue_gentle", "overdue_late", "pre_due_1d", "pre_due_3d"):
        path = tmp_path / "templates" / f"{name}.zh-CN.txt"
        # A paraphrase no listed word covers: telling the borrower's workplace.
        path.write_text(
            path.read_text("utf-8").rstrip() + "否则我们会给你领导打电话说明情况。\n", "utf-8"
        )
    checked = run(["templates", "check"], tmp_path)
    assert checked.returncode == 1 and "banned:third_party" in checked.stdout
    planned = run(["plan", "--as-of", "2026-11-30", "--export", "plan.csv", "--json"], tmp_path)
    assert planned.returncode == 7, planned.stderr
    assert "fails the lint and was not used" in planned.stderr
    report = json.loads(planned.stdout)
    assert report["lint_templates"]
    exported = (tmp_path / "plan.csv").read_text("utf-8")
    assert "fails the lint" in exported
    import sqlite3

    with sqlite3.connect(tmp_path / "cuikuan.db") as db:
        texts = [t for (t,) in db.execute("SELECT text FROM outbox WHERE control = 0")]
    assert not any("领导" in t for t in texts)


def test_version_is_cheap_it_imports_no_database_or_frame_library() -> None:
    """`cuikuan --version` took 1.35 s of CPU when every command's modules were imported."""
    probe = (
        "import sys\n"
        "sys.argv = ['cuikuan', '--version']\n"
        "from cuikuan.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
        "heavy = [m for m in ('sqlalchemy', 'polars', 'alembic', 'numpy') if m in sys.modules]\n"
        "print('heavy', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "cuikuan " in done.stdout and "heavy []" in done.stdout, done.stdout


def test_text_from_outside_prints_literally_in_tables(workdir: Path, tmp_path: Path) -> None:
    """A reply with Rich markup ("[/i]") made `tasks list` and `timeline` exit 1; "[link=...]"
    in a name hid a link; escape sequences reached the terminal."""
    import sqlite3

    assert run(["init", "."], tmp_path).returncode == 0
    assert run(["import", str(workdir / "ledger.csv")], tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "cuikuan.db") as db:
        db.execute(
            "UPDATE customers SET name = ? WHERE external_id = 'C00000002'",
            ("[link=http://evil.example]王[/link]\x1b[2J",),
        )
    number = json.loads(run(["account", "C00000002", "--json"], tmp_path).stdout)["phones"][0]
    hostile = "[/i] 我要人工客服 [bold]x :smile: \x1b]8;;http://evil.example\x07y"
    assert run(["reply", number, hostile], tmp_path).returncode == 0
    for command in (["tasks", "list"], ["timeline", "C00000002"], ["account", "C00000002"]):
        shown = run(command, tmp_path)
        assert shown.returncode == 0, (command, shown.stderr)
        assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    listed = run(["tasks", "list"], tmp_path).stdout
    assert "[/i]" in listed or "[link=" in listed  # what was sent, as it was sent
    assert "[/i]" in run(["timeline", "C00000002"], tmp_path).stdout


def test_send_exits_8_when_the_provider_refuses_our_credentials(
    workdir: Path, tmp_path: Path
) -> None:
    from tests.smsc_helpers import running_smsc

    assert run(["init", "."], tmp_path).returncode == 0
    assert run(["import", str(workdir / "ledger.csv")], tmp_path).returncode == 0
    assert run(["plan", "--as-of", "2026-11-30"], tmp_path).returncode == 0
    with running_smsc(system_id="lender", password="right") as smsc:
        env = {"CUIKUAN_CHANNELS__SMS": "smpp", "CUIKUAN_SMPP__PORT": str(smsc.port),
               "CUIKUAN_SMPP__SYSTEM_ID": "lender", "CUIKUAN_SMPP_PASSWORD": "wrong"}  # fmt: skip
        sent = run(["send", "--now", "2026-11-30T03:00Z", "--json"], tmp_path, env)
    assert sent.returncode == 8, sent.stderr
    assert "refused our credentials" in sent.stderr and "next run" in sent.stderr
    report = json.loads(sent.stdout)
    assert report["sent"] == 0 and report["waiting"] > 0


def test_console_users_are_added_listed_and_disabled(tmp_path: Path) -> None:
    assert run(["init", "."], tmp_path).returncode == 0
    env = {"PW": "a long enough passphrase"}
    made = run(
        ["users", "add", "li", "--role", "agent", "--team", "east", "--password-env", "PW"],
        tmp_path,
        env,
    )
    assert made.returncode == 0, made.stderr
    again = run(["users", "add", "li", "--role", "agent", "--password-env", "PW"], tmp_path, env)
    assert (
        again.returncode != 0
        and "exists already" in again.stderr
        and "Traceback" not in again.stderr
    )
    bad = run(["users", "add", "x", "--role", "boss", "--password-env", "PW"], tmp_path, env)
    assert bad.returncode != 0 and "agent, supervisor, compliance, admin" in bad.stderr
    assert run(["users", "disable", "li"], tmp_path).returncode == 0
    listed = json.loads(run(["users", "list", "--json"], tmp_path).stdout)
    assert [(u["name"], u["role"], u["team"], u["disabled"]) for u in listed] == [
        ("li", "agent", "east", True)
    ]
    assert "password" not in json.dumps(listed)


def test_a_template_change_from_the_command_line_needs_a_second_person(tmp_path: Path) -> None:
    assert run(["init", "."], tmp_path).returncode == 0
    env = {"PW": "a-long-enough-password"}
    for name, role in (("sam", "supervisor"), ("cara", "compliance")):
        added = run(["users", "add", name, "--role", role, "--password-env", "PW"], tmp_path, env)
        assert added.returncode == 0, added.stderr
    live = tmp_path / "templates" / "overdue_firm.zh-CN.txt"
    changed = tmp_path / "overdue_firm.zh-CN.txt"
    changed.write_text(live.read_text("utf-8").replace("请尽快还款", "请今天还款"), "utf-8")
    assert run(["templates", "propose", str(changed), "--by", "sam"], tmp_path).returncode == 0
    assert "请今天还款" not in live.read_text("utf-8")  # a draft changes nothing
    refused = run(["templates", "approve", "1", "--by", "sam"], tmp_path)
    assert refused.returncode != 0 and "compliance" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert run(["templates", "approve", "1", "--by", "cara"], tmp_path).returncode == 0
    assert "请今天还款" in live.read_text("utf-8")
    listed = json.loads(run(["templates", "versions", "--json"], tmp_path).stdout)
    assert [(v["state"], v["author"], v["decided_by"]) for v in listed] == [
        ("superseded", "folder", None), ("approved", "user:sam", "user:cara")
    ]  # fmt: skip


def test_a_policy_change_from_the_command_line_needs_a_second_person(tmp_path: Path) -> None:
    """`policy show` prints the rules in force; `policy propose` keeps a draft (a broken one is
    refused naming line and field, no traceback); another compliance user's approval rewrites
    the [policy] table, which the next command reads."""
    assert run(["init", "."], tmp_path).returncode == 0
    env = {"PW": "a-long-enough-password"}
    for name in ("cara", "dana"):
        added = run(["users", "add", name, "--role", "compliance", "--password-env", "PW"],
                    tmp_path, env)  # fmt: skip
        assert added.returncode == 0, added.stderr
    shown = json.loads(run(["policy", "show", "--json"], tmp_path).stdout)
    assert shown["rules"]["window"] == "08:00-21:00" and shown["section"].startswith("[policy]")
    broken = tmp_path / "broken.toml"
    broken.write_text('[policy]\nwindow_end = "7pm"\n', "utf-8")
    refused = run(["policy", "propose", str(broken), "--by", "cara"], tmp_path)
    assert refused.returncode != 0 and ":2: policy.window_end" in refused.stderr
    assert "Traceback" not in refused.stderr
    change = tmp_path / "policy.toml"
    change.write_text('[policy]\njurisdiction = "cn"\nwindow_end = "20:00"\n', "utf-8")
    assert run(["policy", "propose", str(change), "--by", "cara"], tmp_path).returncode == 0
    assert json.loads(run(["policy", "show", "--json"], tmp_path).stdout)["rules"]["window"] == (
        "08:00-21:00"
    )  # a draft changes nothing
    own = run(["policy", "approve", "1", "--by", "cara"], tmp_path)
    assert own.returncode != 0 and "author" in own.stderr
    assert run(["policy", "approve", "1", "--by", "dana"], tmp_path).returncode == 0
    assert json.loads(run(["policy", "show", "--json"], tmp_path).stdout)["rules"]["window"] == (
        "08:00-20:00"
    )
    listed = json.loads(run(["policy", "versions", "--json"], tmp_path).stdout)
    assert [(v["state"], v["author"], v["decided_by"]) for v in listed] == [
        ("superseded", "folder", None), ("approved", "user:cara", "user:dana")
    ]  # fmt: skip
