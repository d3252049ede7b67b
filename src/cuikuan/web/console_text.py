"""The console's words in Chinese and English, and which language a request gets.

t = words("zh")      # t("today") -> "今日"
pick(user_locale, accept_language_header)   # "zh" or "en"
"""

from __future__ import annotations

from collections.abc import Callable

LOCALES = ("zh", "en")

TEXT: dict[str, tuple[str, str]] = {
    "title": ("催款 控制台", "cuikuan console"),
    "today": ("今日", "Today"),
    "work": ("工作清单", "Work list"),
    "borrowers": ("借款人", "Borrowers"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "logout_everywhere": ("退出所有设备", "Log out everywhere"),
    "name": ("用户名", "Name"),
    "password": ("密码", "Password"),
    "login_failed": (
        "用户名或密码不正确，或账户已暂时锁定。",
        "Wrong name or password, or the account is locked for a while.",
    ),
    "language": ("语言", "Language"),
    "portfolio": ("资产组合（按账龄）", "Portfolio by bucket"),
    "bucket": ("账龄", "Bucket"),
    "accounts": ("账户", "Accounts"),
    "customers": ("客户", "Customers"),
    "outstanding": ("未还本息", "Outstanding"),
    "overdue": ("逾期金额", "Overdue"),
    "plan_today": ("今日计划（按步骤）", "Today's plan by step"),
    "step": ("步骤", "Step"),
    "status": ("状态", "Status"),
    "count": ("数量", "Count"),
    "dispatch": ("发送进度", "Dispatch"),
    "uncertain": ("待核实的消息", "Uncertain messages to resolve"),
    "providers": ("通道状态", "Providers"),
    "paused": ("被暂停的模板", "Templates paused by the guardrail"),
    "none": ("无", "none"),
    "priority": ("优先级", "Priority"),
    "kind": ("类型", "Kind"),
    "due": ("截止", "Due"),
    "assignee": ("处理人", "Assignee"),
    "summary": ("摘要", "Summary"),
    "take": ("领取", "Take"),
    "done": ("完成", "Done"),
    "note": ("备注", "Note"),
    "all_open": ("全部未完成", "All open"),
    "mine": ("我的", "Mine"),
    "overdue_tasks": ("已超时", "Past their SLA"),
    "promises_due": ("今日到期的承诺", "Promises due today"),
    "broken": ("违约的承诺", "Broken promises"),
    "complaints": ("投诉", "Complaints"),
    "search": ("查找", "Search"),
    "search_hint": ("姓名、客户号、借据号或手机号", "Name, customer id, loan id or phone"),
    "phones": ("手机号", "Phones"),
    "reveal": ("显示完整号码", "Show the full numbers"),
    "loans": ("借据", "Loans"),
    "loan": ("借据", "Loan"),
    "dpd": ("逾期天数", "DPD"),
    "next_due": ("下期应还", "Next due"),
    "timeline": ("时间线", "Timeline"),
    "when": ("时间", "When"),
    "what": ("事件", "What"),
    "forbidden": ("您的角色无权查看此页面。", "Your role may not see this page."),
    "not_found": ("没有找到。", "Not found."),
    "bad_form": (
        "表单已过期，请刷新页面后重试。",
        "This form has expired: reload the page and try again.",
    ),
    "no_results": ("没有匹配的借款人。", "No borrower matches."),
    "signed_in_as": ("当前用户", "Signed in as"),
    "actions": ("操作", "Actions"),
    "said": (
        "借款人说（按回复处理：承诺、分期、退订……）",
        "What the borrower said (read like a reply: a promise, instalments, stop...)",
    ),
    "record": ("记录", "Record"),
    "call": ("记录一次通话（计入联系频次上限）", "Log a call (it counts against the contact caps)"),
    "call_number": ("拨打的号码", "Number called"),
    "call_outcome": ("结果", "Outcome"),
    "call_note": ("备注", "Note"),
    "log_call": ("记录通话", "Log call"),
    "flag": ("标记", "Flag"),
    "set": ("设置", "set"),
    "clear": ("清除", "clear"),
    "apply": ("执行", "Apply"),
    "number_stop": ("号码", "Number"),
    "opt_out": ("退订（停止短信）", "opt out (stop SMS)"),
    "opt_in": ("恢复", "opt back in"),
    "flags_now": ("当前标记", "Flags now"),
    "audit": ("审计日志", "Audit log"),
    "who": ("操作人", "Who"),
    "object": ("对象", "Object"),
    "report": ("报告", "Report"),
    "done_ok": ("已完成", "Done"),
    "templates": ("模板", "Templates"),
    "locale": ("语言版本", "Locale"),
    "channel": ("渠道", "Channel"),
    "tone": ("语气", "Tone"),
    "lint_ok": ("检查通过", "No findings"),
    "preview": ("示例预览", "Preview for a sample borrower"),
    "segments": ("条数", "Segments"),
    "billing_units": ("计费条数", "Billing units"),
    "encoding": ("编码", "Encoding"),
    "not_saved": (
        "保存为草稿后，须由另一位合规人员批准才会生效；批准前计划仍使用当前版本。",
        "Saved as a draft, a change takes effect only once another compliance user approves it; "
        "until then the plan uses the current version.",
    ),
    "save_draft": ("保存为草稿", "Save as draft"),
    "draft_saved": ("已保存为草稿，等待批准", "Saved as a draft, waiting for approval"),
    "drafts": ("待批准的草稿", "Drafts waiting for approval"),
    "versions": ("版本", "Versions"),
    "author": ("作者", "Author"),
    "state": ("状态", "State"),
    "approve": ("批准", "Approve"),
    "reject": ("驳回", "Reject"),
    "restore": ("恢复为草稿", "Restore as a draft"),
    "no_drafts": ("没有待批准的草稿。", "No draft is waiting."),
    "refused": ("未执行：", "Not done:"),
    "strategy": ("策略与政策", "Strategy and policy"),
    "steps": ("步骤（按计划尝试的顺序）", "Steps (in the order the plan tries them)"),
    "steps_help": (
        "对每位借款人，第一个条件全部满足的步骤生效；联系政策仍决定是否以及何时发送。",
        "For each borrower the first step whose conditions all hold wins; the contact policy "
        "still decides whether and when it is sent.",
    ),
    "sends": ("发送的模板", "Sends"),
    "control_share": ("对照组比例", "Held back"),
    "repeat_days": ("重复间隔（天）", "Repeat (days)"),
    "holidays": ("节假日", "Holidays"),
    "policy": ("生效中的联系政策", "The contact policy in force"),
    "strategy_file": ("策略文件", "The strategy file"),
    "policy_table": (
        "联系政策（设置文件中的 [policy]）",
        "The contact policy ([policy] in the settings file)",
    ),
    "policy_compliance": (
        "联系政策只能由合规人员修改。",
        "Only compliance changes the contact policy.",
    ),
    "why": ("修改原因", "Why"),
    "check_ok": ("检查通过", "No findings"),
    "explain": (
        "解释：某位借款人某天为何收到或不收到提醒",
        "Explain: why a borrower gets a reminder on a day, or not",
    ),
    "customer_id": ("客户编号", "Customer id"),
    "day": ("日期", "Day"),
    "explain_go": ("解释", "Explain"),
    "days_to_due": ("距到期日", "days to due"),
    "stopped": ("已停止自动提醒，转人工", "stopped: left to people"),
    "decision": ("决定", "Decision"),
    "no_loans": ("没有未结清的借款：无需提醒", "No open loan: nothing to remind about"),
    "rates_caption": ("所有语言版本合计，期间", "All locales together, from"),
    "sent_count": ("已发送", "Sent"),
    "reply_rate": ("回复率", "Reply rate"),
    "opt_out_rate": ("退订率", "Opt-out rate"),
    "complaint_rate": ("投诉率", "Complaint rate"),
    "all_kinds": ("全部类型", "All kinds"),
    "saved_views": ("保存的视图", "Saved views"),
    "save_view": ("将当前视图保存为", "Save this view as"),
    "save": ("保存", "Save"),
    "forget": ("删除", "Forget"),
    "assign_to": ("分配给", "Assign to"),
    "assign_selected": ("分配所选任务", "Assign the ticked tasks"),
    "pick": ("选择任务", "Pick task"),
    "instalment_plan": ("协商分期", "Agree an instalment plan"),
    "plan_schedule": (
        "约定的还款：每行一笔，日期:金额（合计须覆盖逾期金额）",
        "Agreed payments, one a line, DATE:AMOUNT (together they cover the overdue amount)",
    ),
    "agree_plan": ("确认分期", "Agree plan"),
    "no_step": ("没有匹配的步骤，不发送", "No step matches: no message"),
    "admin": ("系统管理", "Admin"),
    "report_from": ("起始日", "From"),
    "report_to": ("截止日", "To"),
    "pay_window": ("付款窗口（天）", "Pay window (days)"),
    "show": ("查看", "Show"),
    "report_as_of": ("数据截至", "As of"),
    "computing": (
        "正在计算（大型账本需要几秒钟），完成后自动显示……",
        "Computing (a few seconds on a large book); it shows here when ready…",
    ),
    "computing_failed": (
        "计算失败，已记录日志。请刷新页面重试。",
        "Computing this failed (it is in the server's log). Reload the page to try again.",
    ),
    "report_kept": (
        "最近 30 天的报告由后台任务每小时更新一次",
        "the last 30 days' report is remade by the worker every hour",
    ),
    "report_refresh": ("立即重新计算", "Recompute now"),
    "export_html": ("导出 HTML（可离线打开）", "Export HTML (opens offline)"),
    "export_json": ("导出 JSON", "Export JSON"),
    "preview_for": (
        "按真实借款人预览（客户编号，可选）",
        "Preview for a real borrower (customer id, optional)",
    ),
    "preview_real": ("真实借款人预览：", "Preview for the borrower"),
    "cost": ("每条费用", "Cost a message"),
    "label": ("名称", "Name"),
    "users": ("用户", "Users"),
    "role": ("角色", "Role"),
    "team": ("团队", "Team"),
    "enabled": ("正常", "enabled"),
    "disabled": ("已停用", "disabled"),
    "locked_until": ("锁定至", "locked until"),
    "enable": ("启用", "Enable"),
    "unlock": ("解锁", "Unlock"),
    "disable": ("停用", "Disable"),
    "new_password": ("新密码", "New password"),
    "reset_password": ("重置密码", "Reset password"),
    "add_user": ("添加用户", "Add a user"),
    "api_keys": ("API 密钥", "API keys"),
    "key_prefix": ("前缀", "Prefix"),
    "scopes": ("权限范围", "Scopes"),
    "rate": ("每分钟请求上限", "Requests a minute"),
    "created": ("创建时间", "Created"),
    "revoked": ("已吊销", "revoked"),
    "revoke": ("吊销", "Revoke"),
    "create_key": ("创建密钥", "Create a key"),
    "key_once": (
        "新密钥只显示这一次，请立即复制保存；系统只保存其哈希值。",
        "The new key is shown this once: copy it now. Only its hash is kept.",
    ),
    "endpoint": ("连接", "Endpoint"),
    "serves": ("承担", "Serves"),
    "next_try": ("下次尝试", "next try"),
    "hold": ("暂停发送", "Hold"),
    "release": ("恢复发送", "Release"),
    "hold_reason": ("暂停原因", "Why hold it"),
    "hold_help": (
        "暂停的通道不再发送任何消息：消息改走备用通道，或在发送时段内等待；回执和回复照常接收。",
        "A held provider sends nothing: its messages go to the fallback or wait inside their "
        "windows; receipts and replies are still heard.",
    ),
}


def words(locale: str) -> Callable[[str], str]:
    index = 0 if locale == "zh" else 1

    def t(key: str) -> str:
        pair = TEXT.get(key)
        return pair[index] if pair else key

    return t


def pick(user_locale: str | None, accept_language: str | None) -> str:
    """The user's own choice, else the first of zh/en the browser asks for, else Chinese."""
    if user_locale in LOCALES:
        return str(user_locale)
    for part in (accept_language or "").split(",")[:10]:
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "zh"
