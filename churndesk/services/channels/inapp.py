"""In-app notifications: the title and body a desktop shows in its alert pane and tray popup.

Plain text only: the desktop escapes it for display, like any other data value.
"""

from __future__ import annotations

from typing import Any

TITLE_CHARS = 300
LISTED_IN_APP = 10


def _score(value: Any) -> str:
    return "–" if value is None else f"{float(value):.1f}"


def render_inapp(payload: dict[str, Any]) -> tuple[str, str]:
    """(title, body) for an alerts payload; grouped alerts become one notification."""
    rule = payload.get("rule") or {}
    alerts: list[dict[str, Any]] = list(payload.get("alerts") or [])
    total = int(payload.get("total") or len(alerts))
    rule_name = str(rule.get("name") or "Alert")
    if total == 1 and alerts:
        only = alerts[0]
        title = str(only.get("title") or rule_name)
        if only.get("customer_id") is None:
            body = str(rule.get("condition") or "")
        else:
            body = (
                f"{only.get('customer') or ''} ({only.get('external_id') or ''}): "
                f"risk score {_score(only.get('score'))}, band {only.get('band') or '–'}"
            )
        return title[:TITLE_CHARS], body
    title = f"{rule_name}: {total:,} customers"
    lines = [
        f"{a.get('customer') or ''} ({a.get('external_id') or ''}): {_score(a.get('score'))}"
        for a in alerts[:LISTED_IN_APP]
    ]
    if total > LISTED_IN_APP:
        lines.append(f"and {total - LISTED_IN_APP:,} more")
    return title[:TITLE_CHARS], "\n".join(lines)
