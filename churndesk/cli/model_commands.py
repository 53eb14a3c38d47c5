"""``churndesk train``, ``models``, ``score`` and ``runs``: the model lifecycle from a shell."""

from __future__ import annotations

import argparse
import getpass

from churndesk.cli.context import CommandContext
from churndesk.cli.terminal import terminal_progress


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    train = sub.add_parser("train", help="train a churn model on the customers", parents=[parent])
    train.add_argument("--algorithm", choices=("auto", "hgb", "logreg"), default="auto")
    train.add_argument("--calibrate", action="store_true", help="calibrate probabilities")
    train.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--promote", action="store_true", help="make it the active model")
    train.set_defaults(handler=train_command)

    models = sub.add_parser("models", help="model versions", parents=[parent])
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    models_sub.add_parser("list", help="every version", parents=[parent]).set_defaults(
        handler=models_list
    )
    show = models_sub.add_parser("show", help="one version's metrics", parents=[parent])
    show.add_argument("version")
    show.set_defaults(handler=models_show)
    promote = models_sub.add_parser("promote", help="make a version active", parents=[parent])
    promote.add_argument("version")
    promote.set_defaults(handler=models_promote)
    models_sub.add_parser(
        "rollback", help="re-activate the previous version", parents=[parent]
    ).set_defaults(handler=models_rollback)
    compare = models_sub.add_parser("compare", help="two versions side by side", parents=[parent])
    compare.add_argument("a")
    compare.add_argument("b")
    compare.set_defaults(handler=models_compare)

    score = sub.add_parser("score", help="score every customer", parents=[parent])
    score.add_argument("--model", metavar="VERSION", help="a version other than the active one")
    score.set_defaults(handler=score_command)

    runs = sub.add_parser("runs", help="scoring runs", parents=[parent])
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    runs_list_parser = runs_sub.add_parser("list", help="recent runs", parents=[parent])
    runs_list_parser.add_argument("--limit", type=int, default=20)
    runs_list_parser.set_defaults(handler=runs_list)
    runs_show = runs_sub.add_parser("show", help="one run", parents=[parent])
    runs_show.add_argument("run_id", type=int)
    runs_show.set_defaults(handler=runs_show_command)


def _metric(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def train_command(ctx: CommandContext) -> int:
    from churndesk.services.models import get_model, train_model

    args = ctx.args
    database = ctx.database()
    with terminal_progress(ctx) as progress:
        summary = train_model(
            database.engine,
            {
                "algorithm": args.algorithm,
                "calibrate": args.calibrate,
                "folds": args.folds,
                "random_state": args.seed,
            },
            actor=getpass.getuser(),
            promote=args.promote,
            progress=progress,
        )
    detail = get_model(database.engine, summary.version)
    candidates = detail.metrics.get("candidates", [])
    lines = [
        f"Trained {summary.label} ({summary.algorithm}) on {summary.training_rows:,} customers: "
        f"{summary.status}.",
        f"  ROC-AUC {_metric(summary.roc_auc)}  PR-AUC {_metric(summary.pr_auc)}  "
        f"Brier {_metric(summary.brier)}  (cross-validated)",
    ]
    for candidate in candidates:
        lines.append(
            f"  candidate {candidate['algorithm']:<7} ROC-AUC {candidate['roc_auc']:.3f} "
            f"± {candidate['roc_auc_std']:.3f}"
        )
    importance = detail.metrics.get("importance", [])[:5]
    if importance:
        lines.append("  most important: " + ", ".join(i["feature"] for i in importance))
    ctx.emit({**summary.as_dict(), "metrics": detail.metrics}, "\n".join(lines))
    return 0


def models_list(ctx: CommandContext) -> int:
    from churndesk.services.models import list_models

    models = list_models(ctx.database().engine)
    if not models:
        ctx.emit([], "No models yet. Train one with: churndesk train")
        return 0
    lines = [f"{'version':<10}{'status':<11}{'algorithm':<10}{'ROC-AUC':>8}{'Brier':>8}  trained"]
    for m in models:
        trained = m.trained_at.strftime("%Y-%m-%d %H:%M") if m.trained_at else ""
        lines.append(
            f"{m.label:<10}{m.status:<11}{m.algorithm:<10}{_metric(m.roc_auc):>8}"
            f"{_metric(m.brier):>8}  {trained} {m.trained_by or ''}"
        )
    ctx.emit([m.as_dict() for m in models], "\n".join(lines))
    return 0


def models_show(ctx: CommandContext) -> int:
    from churndesk.services.models import get_model

    detail = get_model(ctx.database().engine, ctx.args.version)
    s = detail.summary
    features = [f["name"] for f in detail.feature_schema.get("features", [])]
    lines = [
        f"{s.label}: {s.algorithm}, {s.status}, trained {s.trained_at} by {s.trained_by}",
        f"ROC-AUC {_metric(s.roc_auc)}  PR-AUC {_metric(s.pr_auc)}  Brier {_metric(s.brier)}",
        f"threshold {detail.metrics.get('threshold')}; training rows {s.training_rows:,}",
        f"features ({len(features)}): {', '.join(features)}",
        f"sha256 {s.sha256}",
    ]
    ctx.emit(
        {
            **s.as_dict(),
            "params": detail.params,
            "metrics": detail.metrics,
            "feature_schema": detail.feature_schema,
            "training_fingerprint": detail.training_fingerprint,
        },
        "\n".join(lines),
    )
    return 0


def models_promote(ctx: CommandContext) -> int:
    from churndesk.services.models import promote_model

    summary = promote_model(ctx.database().engine, ctx.args.version, actor=getpass.getuser())
    ctx.emit(summary.as_dict(), f"{summary.label} is now the active model.")
    return 0


def models_rollback(ctx: CommandContext) -> int:
    from churndesk.services.models import rollback_model

    summary = rollback_model(ctx.database().engine, actor=getpass.getuser())
    ctx.emit(summary.as_dict(), f"Rolled back: {summary.label} is the active model again.")
    return 0


def models_compare(ctx: CommandContext) -> int:
    from churndesk.services.models import compare_models

    comparison = compare_models(ctx.database().engine, ctx.args.a, ctx.args.b)
    a, b = comparison.a, comparison.b
    lines = [f"{'metric':<12}{a.label:>12}{b.label:>12}{'change':>10}"]
    data = []
    for metric, va, vb, delta, better in comparison.rows:
        verdict = "" if better is None else ("better" if better else "worse")
        lines.append(
            f"{metric:<12}{_metric(va):>12}{_metric(vb):>12}"
            f"{'' if delta is None else f'{delta:+.3f}':>10} {verdict}"
        )
        data.append({"metric": metric, "a": va, "b": vb, "delta": delta, "b_better": better})
    ctx.emit({"a": a.as_dict(), "b": b.as_dict(), "metrics": data}, "\n".join(lines))
    return 0


def score_command(ctx: CommandContext) -> int:
    from churndesk.services.scoring import score_all

    with terminal_progress(ctx) as progress:
        run = score_all(
            ctx.database().engine,
            model_version=ctx.args.model,
            actor=getpass.getuser(),
            progress=progress,
        )
    bands = ", ".join(f"{k} {v:,}" for k, v in sorted(run.band_counts.items()))
    psi = "" if run.psi is None else f"; drift (PSI) {run.psi:.3f}"
    ctx.emit(
        run.as_dict(),
        f"Scoring run {run.id} with {run.model_label}: {run.customers_scored:,} customers "
        f"({bands}){psi}.",
    )
    return 0


def runs_list(ctx: CommandContext) -> int:
    from churndesk.services.scoring import list_runs

    runs = list_runs(ctx.database().engine, limit=ctx.args.limit)
    if not runs:
        ctx.emit([], "No scoring runs yet. Score the customers with: churndesk score")
        return 0
    lines = [f"{'run':>5}  {'status':<10}{'model':<10}{'customers':>10}  started"]
    for r in runs:
        started = r.started_at.strftime("%Y-%m-%d %H:%M") if r.started_at else ""
        lines.append(
            f"{r.id:>5}  {r.status:<10}{r.model_label:<10}{r.customers_scored:>10,}  "
            f"{started} {r.started_by or ''}"
        )
    ctx.emit([r.as_dict() for r in runs], "\n".join(lines))
    return 0


def runs_show_command(ctx: CommandContext) -> int:
    from churndesk.services.scoring import get_run

    run = get_run(ctx.database().engine, ctx.args.run_id)
    bands = ", ".join(f"{k} {v:,}" for k, v in sorted(run.band_counts.items()))
    lines = [
        f"Run {run.id}: {run.status}, {run.model_label}, started {run.started_at} by "
        f"{run.started_by}, finished {run.finished_at}",
        f"{run.customers_scored:,} customers: {bands}",
    ]
    if run.psi is not None:
        lines.append(f"drift (population stability index): {run.psi:.3f}")
    if run.error:
        lines.append(f"error: {run.error}")
    ctx.emit(run.as_dict(), "\n".join(lines))
    return 0
