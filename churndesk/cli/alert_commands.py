"""``churndesk rules|alerts|notify|worker``: alert rules and lifecycle, delivery, the worker."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import signal
import ssl
import sys
import threading
from pathlib import Path
from typing import Any

from churndesk.cli.context import CommandContext
from churndesk.config import LocalSettings
from churndesk.db.connect import Database
from churndesk.errors import NotFoundError, ValidationError
from churndesk.services import alerts, notify
from churndesk.services.alert_rules import EVERYONE, KIND_PARAMS
from churndesk.services.channels import config as channel_config
from churndesk.services.worker import WorkerOptions, WorkerTick, run_worker


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    _register_rules(sub, parent)
    _register_alerts(sub, parent)
    _register_notify(sub, parent)
    worker = sub.add_parser(
        "worker",
        help="run scheduled scoring, rule evaluation and notification dispatch until stopped",
        parents=[parent],
    )
    worker.add_argument(
        "--poll-s",
        type=_positive_float,
        default=5.0,
        metavar="S",
        help="seconds between passes (default 5)",
    )
    worker.add_argument(
        "--score-every-hours",
        type=float,
        default=24.0,
        metavar="H",
        help="start a scoring run when the last is older (0: never; default 24)",
    )
    worker.add_argument("--no-dispatch", action="store_true", help="do not send notifications")
    worker.add_argument("--once", action="store_true", help="do one pass and exit")
    worker.set_defaults(handler=worker_command)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _actor(ctx: CommandContext, database: Database) -> str:
    """Who is acting: the PostgreSQL login, else this desktop's user, else the OS account."""
    explicit = getattr(ctx.args, "user", None)
    if explicit:
        return str(explicit)
    if database.dialect == "postgresql" and database.engine.url.username:
        return str(database.engine.url.username)
    return LocalSettings.load().username or getpass.getuser()


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "–"


# --- rules --------------------------------------------------------------------------------


def _register_rules(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    rules = sub.add_parser("rules", help="alert rules", parents=[parent])
    actions = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="list the alert rules", parents=[parent])
    listing.set_defaults(handler=rules_list)

    show = actions.add_parser("show", help="show one rule", parents=[parent])
    show.add_argument("rule", help="rule id or name")
    show.set_defaults(handler=rules_show)

    add = actions.add_parser("add", help="add a rule", parents=[parent])
    add.add_argument("--name", required=True)
    add.add_argument("--kind", required=True, choices=list(KIND_PARAMS))
    add.add_argument("--threshold", type=float, help="score_threshold: score (0-100)")
    add.add_argument("--points", type=float, help="score_rise: rise in points")
    add.add_argument("--days", type=int, help="score_rise: within this many days")
    add.add_argument("--band", help="band_change: medium, high or critical")
    add.add_argument("--amount", type=float, help="revenue_at_risk: amount")
    add.add_argument("--psi", type=float, help="model_drift: population stability index")
    add.add_argument("--segment", action="append", default=[], help="scope (repeatable)")
    add.add_argument("--plan", action="append", default=[], help="scope (repeatable)")
    add.add_argument("--owner", action="append", default=[], help="scope (repeatable)")
    add.add_argument("--severity", default="warning", choices=["info", "warning", "critical"])
    add.add_argument(
        "--channel",
        action="append",
        dest="channels",
        choices=["inapp", "email", "webhook"],
        help="repeatable (default: inapp)",
    )
    add.add_argument(
        "--recipient",
        action="append",
        dest="recipients",
        help=f"user, e-mail address or webhook name; {EVERYONE} for all analysts "
        "(repeatable; default *)",
    )
    add.add_argument("--cooldown-hours", type=float, default=24.0)
    add.add_argument("--margin", type=float, help="hysteresis margin (default depends on kind)")
    add.add_argument("--digest", action="store_true", help="e-mail as a daily digest")
    add.add_argument("--disabled", action="store_true", help="create it disabled")
    add.add_argument("--user", help="act as this user (default: you)")
    add.set_defaults(handler=rules_add)

    for verb, enabled in (("enable", True), ("disable", False)):
        parser = actions.add_parser(verb, help=f"{verb} a rule", parents=[parent])
        parser.add_argument("rule", help="rule id or name")
        parser.add_argument("--user", help="act as this user (default: you)")
        parser.set_defaults(handler=rules_enable, enabled=enabled)

    remove = actions.add_parser("delete", help="delete a rule", parents=[parent])
    remove.add_argument("rule", help="rule id or name")
    remove.add_argument("--force", action="store_true", help="also delete its alerts")
    remove.add_argument("--user", help="act as this user (default: you)")
    remove.set_defaults(handler=rules_delete)


def _rule_json(rule: alerts.RuleView) -> dict[str, Any]:
    data = dict(rule.__dict__)
    data["condition"] = rule.condition
    return data


def _rule_line(rule: alerts.RuleView) -> str:
    state = "on " if rule.enabled else "off"
    delivery = ", ".join(rule.channels) or "no notifications"
    return f"{rule.id:>4}  {state}  {rule.severity:<8} {rule.name}: {rule.condition} [{delivery}]"


def rules_list(ctx: CommandContext) -> int:
    database = ctx.database()
    alerts.ensure_default_rules(database.engine)
    rules = alerts.list_rules(database.engine)
    human = "\n".join(_rule_line(r) for r in rules) or "No alert rules."
    ctx.emit([_rule_json(r) for r in rules], human)
    return 0


def _rule_text(rule: alerts.RuleView) -> str:
    return "\n".join(
        [
            f"Rule {rule.id}: {rule.name} ({'enabled' if rule.enabled else 'disabled'})",
            f"  when:        {rule.condition}",
            f"  severity:    {rule.severity}",
            f"  channels:    {', '.join(rule.channels) or '–'}"
            + (" (e-mail as daily digest)" if rule.email_mode == "digest" else ""),
            f"  recipients:  {', '.join(rule.recipients) or '–'}",
            f"  cool-down:   {rule.cooldown_hours:g} h; re-arms {rule.hysteresis_margin:g} below",
            f"  version:     {rule.version}, created by {rule.created_by or '–'}",
        ]
    )


def rules_show(ctx: CommandContext) -> int:
    rule = alerts.get_rule(ctx.database().engine, ctx.args.rule)
    ctx.emit(_rule_json(rule), _rule_text(rule))
    return 0


def rules_add(ctx: CommandContext) -> int:
    args = ctx.args
    params = {
        key: getattr(args, key)
        for key in KIND_PARAMS[args.kind]
        if getattr(args, key, None) is not None
    }
    stray = [
        f"--{key}"
        for keys in KIND_PARAMS.values()
        for key in keys
        if key not in KIND_PARAMS[args.kind] and getattr(args, key, None) is not None
    ]
    if stray:
        raise ValidationError(f"A {args.kind} rule does not take {', '.join(sorted(set(stray)))}.")
    spec = alerts.RuleSpec(
        name=args.name,
        kind=args.kind,
        params=params,
        scope={"segment": args.segment, "plan": args.plan, "owner": args.owner},
        severity=args.severity,
        channels=tuple(args.channels or ["inapp"]),
        recipients=tuple(args.recipients or [EVERYONE]),
        enabled=not args.disabled,
        cooldown_hours=args.cooldown_hours,
        hysteresis_margin=args.margin,
        email_mode="digest" if args.digest else "immediate",
    )
    database = ctx.database()
    rule = alerts.create_rule(database.engine, spec, actor=_actor(ctx, database))
    ctx.emit(_rule_json(rule), f"Added rule {rule.id}: {rule.name} ({rule.condition}).")
    return 0


def rules_enable(ctx: CommandContext) -> int:
    database = ctx.database()
    rule = alerts.set_rule_enabled(
        database.engine, ctx.args.rule, ctx.args.enabled, actor=_actor(ctx, database)
    )
    state = "enabled" if rule.enabled else "disabled"
    ctx.emit(_rule_json(rule), f"Rule {rule.id} ({rule.name}) is {state}.")
    return 0


def rules_delete(ctx: CommandContext) -> int:
    database = ctx.database()
    rule = alerts.get_rule(database.engine, ctx.args.rule)
    removed = alerts.delete_rule(
        database.engine, rule.id, actor=_actor(ctx, database), force=ctx.args.force
    )
    ctx.emit(
        {"deleted": rule.id, "alerts_deleted": removed},
        f"Deleted rule {rule.id} ({rule.name})"
        + (f" and its {removed:,} alerts." if removed else "."),
    )
    return 0


# --- alerts -------------------------------------------------------------------------------


def _register_alerts(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    group = sub.add_parser(
        "alerts", help="alerts: evaluate, list, lifecycle, statistics", parents=[parent]
    )
    actions = group.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)

    evaluate = actions.add_parser(
        "evaluate", help="evaluate the rules over a scoring run", parents=[parent]
    )
    evaluate.add_argument("--run", type=int, help="scoring run id (default: the latest)")
    evaluate.set_defaults(handler=alerts_evaluate)

    listing = actions.add_parser("list", help="list alerts, newest first", parents=[parent])
    listing.add_argument(
        "--status",
        action="append",
        choices=list(alerts.ALERT_STATUSES),
        help="repeatable; default: all unresolved",
    )
    listing.add_argument("--all", action="store_true", help="include resolved alerts")
    listing.add_argument("--rule", help="rule id or name")
    listing.add_argument("--customer", type=int, help="customer id")
    listing.add_argument("--severity", choices=["info", "warning", "critical"])
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=alerts_list)

    show = actions.add_parser("show", help="show an alert and its history", parents=[parent])
    show.add_argument("alert", type=int)
    show.set_defaults(handler=alerts_show)

    for verb, help_text in (("ack", "acknowledge an alert"), ("resolve", "resolve an alert")):
        parser = actions.add_parser(verb, help=help_text, parents=[parent])
        parser.add_argument("alert", type=int)
        parser.add_argument("--note", default="")
        parser.add_argument("--user", help="act as this user (default: you)")
        parser.set_defaults(handler=alerts_step, verb=verb)

    assign = actions.add_parser("assign", help="assign an alert to a user", parents=[parent])
    assign.add_argument("alert", type=int)
    assign.add_argument("assignee")
    assign.add_argument("--note", default="")
    assign.add_argument("--user", help="act as this user (default: you)")
    assign.set_defaults(handler=alerts_step, verb="assign")

    snooze = actions.add_parser("snooze", help="snooze an alert until a time", parents=[parent])
    snooze.add_argument("alert", type=int)
    when = snooze.add_mutually_exclusive_group(required=True)
    when.add_argument("--until", help="ISO time, e.g. 2025-06-01T09:00 (UTC unless given)")
    when.add_argument("--hours", type=_positive_float, help="snooze for this many hours")
    snooze.add_argument("--note", default="")
    snooze.add_argument("--user", help="act as this user (default: you)")
    snooze.set_defaults(handler=alerts_step, verb="snooze")

    stats = actions.add_parser("stats", help="alert statistics", parents=[parent])
    stats.add_argument("--days", type=int, default=30, help="look back this many days")
    stats.set_defaults(handler=alerts_stats)


def _alert_json(alert: alerts.AlertView) -> dict[str, Any]:
    return dict(alert.__dict__)


def alerts_evaluate(ctx: CommandContext) -> int:
    engine = ctx.database().engine
    alerts.ensure_default_rules(engine)
    run_id = ctx.args.run
    if run_id is None:
        run_id = alerts.latest_completed_run(engine)
        if run_id is None:
            raise NotFoundError("There is no completed scoring run to evaluate yet.")
    result = alerts.evaluate_rules(engine, int(run_id))
    lines = [
        f"Run {result.run_id}: {result.alerts_created:,} new alerts, "
        f"{result.messages_queued:,} notifications queued ({result.seconds:.2f} s)."
    ]
    lines += [f"  {o.name}: {o.alerts_created:,}" for o in result.rules]
    ctx.emit(result.to_json(), "\n".join(lines))
    return 0


def alerts_list(ctx: CommandContext) -> int:
    args = ctx.args
    engine = ctx.database().engine
    statuses = args.status or (
        None if args.all else ["open", "acknowledged", "assigned", "snoozed"]
    )
    rule_id = alerts.get_rule(engine, args.rule).id if args.rule else None
    found = alerts.alert_history(
        engine,
        customer_id=args.customer,
        rule_id=rule_id,
        statuses=statuses,
        severity=args.severity,
        limit=args.limit,
    )
    human = "\n".join(
        f"{a.id:>6}  {_when(a.created_at)}  {a.severity:<8} {a.status:<12} {a.title}"
        + (f"  → {a.assigned_to}" if a.assigned_to else "")
        for a in found
    )
    ctx.emit([_alert_json(a) for a in found], human or "No alerts.")
    return 0


def alerts_show(ctx: CommandContext) -> int:
    detail = alerts.get_alert(ctx.database().engine, ctx.args.alert)
    a = detail.alert
    lines = [
        f"Alert {a.id}: {a.title}",
        f"  status:    {a.status}"
        + (f" until {_when(a.snoozed_until)}" if a.status == "snoozed" else ""),
        f"  severity:  {a.severity}; rule {a.rule_id} ({a.rule_name})",
        f"  customer:  {a.customer_name or '–'} ({a.external_id or '–'})",
        f"  score:     {'–' if a.score is None else f'{a.score:.1f}'}; run {a.run_id}",
        f"  details:   {json.dumps(a.details, ensure_ascii=False)}",
        f"  created:   {_when(a.created_at)}",
    ]
    lines += [
        f"  {_when(e.at)}  {e.action} by {e.actor or 'churndesk'}"
        + (f": {e.note}" if e.note else "")
        for e in detail.events
    ]
    data = _alert_json(a) | {"events": [e.__dict__ for e in detail.events]}
    ctx.emit(data, "\n".join(lines))
    return 0


def _parse_until(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"'{text}' is not a time like 2025-06-01T09:00.") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def alerts_step(ctx: CommandContext) -> int:
    args = ctx.args
    database = ctx.database()
    engine = database.engine
    actor = _actor(ctx, database)
    if args.verb == "ack":
        alert = alerts.acknowledge_alert(engine, args.alert, actor=actor, note=args.note)
        human = f"Alert {alert.id} acknowledged."
    elif args.verb == "assign":
        alert = alerts.assign_alert(engine, args.alert, args.assignee, actor=actor, note=args.note)
        human = f"Alert {alert.id} assigned to {alert.assigned_to}."
    elif args.verb == "snooze":
        until = (
            _parse_until(args.until)
            if args.until
            else dt.datetime.now(dt.UTC) + dt.timedelta(hours=args.hours)
        )
        alert = alerts.snooze_alert(engine, args.alert, until, actor=actor, note=args.note)
        human = f"Alert {alert.id} snoozed until {_when(alert.snoozed_until)} UTC."
    else:
        alert = alerts.resolve_alert(engine, args.alert, actor=actor, note=args.note)
        human = f"Alert {alert.id} resolved."
    ctx.emit(_alert_json(alert), human)
    return 0


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def alerts_stats(ctx: CommandContext) -> int:
    stats = alerts.alert_statistics(ctx.database().engine, days=ctx.args.days)
    lines = [
        f"{stats.total:,} alerts from {_when(stats.since)} to {_when(stats.until)} UTC; "
        f"{stats.unresolved_now:,} unresolved now.",
        f"Mean time to acknowledge: {_duration(stats.mean_time_to_acknowledge_s)}; "
        f"to resolve: {_duration(stats.mean_time_to_resolve_s)}.",
        "By severity: " + ", ".join(f"{k} {v:,}" for k, v in stats.per_severity.items()),
        "By status: " + ", ".join(f"{k} {v:,}" for k, v in stats.per_status.items()),
        "By rule:",
        *[f"  {name}: {n:,}" for _, name, n in stats.per_rule],
        "By day:",
        *[f"  {day}: {n:,}" for day, n in stats.per_day],
    ]
    ctx.emit(stats.to_json(), "\n".join(lines))
    return 0


# --- notify -------------------------------------------------------------------------------


def _register_notify(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    group = sub.add_parser("notify", help="notification delivery and channels", parents=[parent])
    actions = group.add_subparsers(dest="notify_command", metavar="ACTION", required=True)

    dispatch = actions.add_parser(
        "dispatch", help="deliver the notifications that are due", parents=[parent]
    )
    dispatch.add_argument("--batch", type=int, default=100)
    dispatch.set_defaults(handler=notify_dispatch)

    listing = actions.add_parser("list", help="delivery status of notifications", parents=[parent])
    listing.add_argument("--status", choices=["pending", "sending", "sent", "failed", "dead"])
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=notify_list)

    retry = actions.add_parser(
        "retry", help="queue a failed or dead notification again", parents=[parent]
    )
    retry.add_argument("message", type=int)
    retry.add_argument("--user", help="act as this user (default: you)")
    retry.set_defaults(handler=notify_retry)

    inbox = actions.add_parser("inbox", help="your in-app notifications", parents=[parent])
    inbox.add_argument("--user", help="whose (default: you)")
    inbox.add_argument("--all", action="store_true", help="include read ones")
    inbox.add_argument("--mark-read", action="store_true", help="mark them read")
    inbox.set_defaults(handler=notify_inbox)

    smtp = actions.add_parser("smtp", help="show or set the SMTP server", parents=[parent])
    smtp.add_argument("--host")
    smtp.add_argument("--port", type=int)
    smtp.add_argument("--security", choices=list(channel_config.SECURITY_MODES))
    smtp.add_argument("--username")
    smtp.add_argument("--from", dest="from_address")
    smtp.add_argument(
        "--ca-file",
        metavar="PATH",
        help="a PEM file of certificate authorities to trust besides the system ones, for a "
        "mail server with a private CA ('' to remove)",
    )
    smtp.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input into the keyring",
    )
    smtp.add_argument("--user", help="act as this user (default: you)")
    smtp.set_defaults(handler=notify_smtp)

    webhook = actions.add_parser("webhook", help="webhook endpoints", parents=[parent])
    hooks = webhook.add_subparsers(dest="webhook_command", metavar="ACTION", required=True)
    add = hooks.add_parser("add", help="add or change an endpoint", parents=[parent])
    add.add_argument("name")
    add.add_argument("url")
    add.add_argument("--secret", help="use this whsec_ secret (default: keep or generate)")
    add.add_argument("--user", help="act as this user (default: you)")
    add.set_defaults(handler=notify_webhook_add)
    hook_list = hooks.add_parser("list", help="list endpoints", parents=[parent])
    hook_list.set_defaults(handler=notify_webhook_list)
    remove = hooks.add_parser("remove", help="remove an endpoint", parents=[parent])
    remove.add_argument("name")
    remove.add_argument("--user", help="act as this user (default: you)")
    remove.set_defaults(handler=notify_webhook_remove)


def notify_dispatch(ctx: CommandContext) -> int:
    engine = ctx.database().engine
    dispatcher = notify.Dispatcher(engine, batch=ctx.args.batch)
    result = dispatcher.run_once()
    counts = notify.outbox_counts(engine)
    human = (
        f"Delivered {result.sent:,}, failed {result.failed:,} (will retry), dead {result.dead:,}."
        f"\nQueue: {counts['pending']:,} pending, {counts['failed']:,} waiting to retry, "
        f"{counts['dead']:,} dead."
    )
    ctx.emit(result.to_json() | {"queue": counts}, human)
    return 0


def notify_list(ctx: CommandContext) -> int:
    messages = notify.list_outbox(
        ctx.database().engine, status=ctx.args.status, limit=ctx.args.limit
    )
    human = "\n".join(
        f"{m.id:>6}  {m.status:<8} {m.channel:<8} {m.recipient:<28} tries {m.attempts}  "
        f"{m.summary}" + (f"\n        last error: {m.last_error}" if m.last_error else "")
        for m in messages
    )
    ctx.emit([m.__dict__ for m in messages], human or "No notifications.")
    return 0


def notify_retry(ctx: CommandContext) -> int:
    database = ctx.database()
    message = notify.retry_message(database.engine, ctx.args.message, actor=_actor(ctx, database))
    ctx.emit(message.__dict__, f"Notification {message.id} queued again.")
    return 0


def notify_inbox(ctx: CommandContext) -> int:
    database = ctx.database()
    user = _actor(ctx, database)
    items = notify.notifications(database.engine, user, unread_only=not ctx.args.all)
    if ctx.args.mark_read:
        notify.mark_read(database.engine, user, [n.id for n in items])
    human = "\n".join(
        f"{n.id:>6}  {_when(n.created_at)}  {'  ' if n.read_at else '• '}{n.title}" for n in items
    )
    ctx.emit([n.__dict__ for n in items], human or f"No notifications for {user}.")
    return 0


def notify_smtp(ctx: CommandContext) -> int:
    args = ctx.args
    database = ctx.database()
    current = channel_config.smtp_settings(database.engine)
    changing = any(
        getattr(args, k) is not None
        for k in ("host", "port", "security", "username", "from_address", "ca_file")
    )
    if not changing and not args.password_stdin:
        if current is None:
            ctx.emit(None, "E-mail is not set up. Use: churndesk notify smtp --host … --from …")
        else:
            has_password = channel_config.smtp_password(current) is not None
            ctx.emit(
                current.to_json() | {"password_in_keyring": has_password},
                f"{current.security} {current.host}:{current.port} as "
                f"{current.username or '(no login)'}, from {current.from_address}"
                + (f", trusting {current.ca_file}" if current.ca_file else "")
                + ("" if has_password or not current.username else " — no password here"),
            )
        return 0
    base = current or channel_config.SmtpSettings(host="")
    settings = channel_config.SmtpSettings(
        host=args.host if args.host is not None else base.host,
        port=args.port if args.port is not None else base.port,
        security=args.security or base.security,
        username=args.username if args.username is not None else base.username,
        from_address=args.from_address if args.from_address is not None else base.from_address,
        timeout_s=base.timeout_s,
        ca_file=_ca_file(args.ca_file) if args.ca_file is not None else base.ca_file,
    )
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
    saved = channel_config.save_smtp_settings(
        database.engine, settings, password=password, actor=_actor(ctx, database)
    )
    ctx.emit(saved.to_json(), f"E-mail via {saved.host}:{saved.port} ({saved.security}) saved.")
    return 0


def _ca_file(text: str) -> str | None:
    """The absolute path of a readable PEM file of CAs (a worker runs elsewhere), None for ''."""
    if not text.strip():
        return None
    path = Path(text.strip()).expanduser().resolve()
    if not path.is_file():
        problem = "does not exist" if not path.exists() else "is not a file"
    else:
        try:
            ssl.create_default_context(cafile=str(path))
            return str(path)
        except ssl.SSLError:
            problem = "holds no PEM certificate"
        except OSError as exc:
            problem = f"cannot be read ({exc.strerror or exc})"
    raise ValidationError(f"The CA file {path} {problem}.", {"ca_file": problem})


def notify_webhook_add(ctx: CommandContext) -> int:
    database = ctx.database()
    secret = channel_config.set_webhook_endpoint(
        database.engine,
        ctx.args.name,
        ctx.args.url,
        secret=ctx.args.secret,
        actor=_actor(ctx, database),
    )
    ctx.emit(
        {"name": ctx.args.name, "url": ctx.args.url, "secret": secret},
        f"Webhook {ctx.args.name} → {ctx.args.url}\nSigning secret (give it to the receiver): "
        f"{secret}",
    )
    return 0


def notify_webhook_list(ctx: CommandContext) -> int:
    endpoints = channel_config.webhook_endpoints(ctx.database().engine)
    data = [
        {"name": name, "url": url, "secret_here": channel_config.webhook_secret(url) is not None}
        for name, url in sorted(endpoints.items())
    ]
    human = "\n".join(
        f"{d['name']:<20} {d['url']}"
        + ("" if d["secret_here"] else "  (no secret on this computer)")
        for d in data
    )
    ctx.emit(data, human or "No webhook endpoints.")
    return 0


def notify_webhook_remove(ctx: CommandContext) -> int:
    database = ctx.database()
    if not channel_config.remove_webhook_endpoint(
        database.engine, ctx.args.name, actor=_actor(ctx, database)
    ):
        raise NotFoundError(f"There is no webhook endpoint named '{ctx.args.name}'.")
    ctx.emit({"removed": ctx.args.name}, f"Webhook {ctx.args.name} removed.")
    return 0


# --- worker -------------------------------------------------------------------------------


def worker_command(ctx: CommandContext) -> int:
    args = ctx.args
    database = ctx.database()
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    options = WorkerOptions(
        poll_s=args.poll_s,
        score_every_hours=args.score_every_hours or None,
        dispatch=not args.no_dispatch,
    )

    def say(data: dict[str, Any], human: str) -> None:
        line = json.dumps(data, default=str) if ctx.json else human
        ctx.stdout.write(line + "\n")
        ctx.stdout.flush()

    def on_tick(tick: WorkerTick) -> None:
        if not tick.busy:
            return
        parts = []
        if tick.scored_run_id:
            parts.append(f"scored run {tick.scored_run_id}")
        if tick.evaluation:
            e = tick.evaluation
            parts.append(f"evaluated run {e.run_id}: {e.alerts_created} alerts")
        if tick.woken:
            parts.append(f"woke {tick.woken} snoozed alerts")
        d = tick.dispatch
        if d.claimed or d.digests_queued:
            parts.append(f"dispatched: {d.sent} sent, {d.failed} failed, {d.dead} dead")
        parts += [f"error: {e}" for e in tick.errors]
        say({"event": "tick"} | tick.to_json(), f"{_when(tick.at)}  " + "; ".join(parts))

    say(
        {"event": "started", "database": database.display_name, "poll_s": options.poll_s},
        f"churndesk worker started on {database.display_name} (every {options.poll_s:g} s)",
    )
    try:
        ticks = run_worker(
            database.engine, stop=stop, options=options, on_tick=on_tick, once=args.once
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    say({"event": "stopped", "ticks": ticks}, f"churndesk worker stopped after {ticks} passes")
    return 0
