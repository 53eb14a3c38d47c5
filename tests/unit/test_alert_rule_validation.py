"""Alert rule validation: clear messages per field, normalised values, kind defaults."""

from __future__ import annotations

import pytest

from churndesk.errors import ValidationError
from churndesk.services.alert_rules import DEFAULT_RULES, RuleSpec, describe, validate_rule

USERS = {"alice": "alice@example.com", "bob": None}
ENDPOINTS = {"crm"}


def check(**fields: object) -> RuleSpec:
    base: dict = {"name": "R", "kind": "score_threshold", "params": {"threshold": 80}}
    return validate_rule(RuleSpec(**(base | fields)), users=USERS, endpoints=ENDPOINTS)


def problems(**fields: object) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        check(**fields)
    assert info.value.user_message.startswith("The alert rule is not valid: ")
    return info.value.field_errors


def test_valid_rule_is_normalised() -> None:
    spec = check(
        name="  Big   accounts ", scope={"segment": "Enterprise", "plan": ["gold", "gold "]},
        channels=["InApp", "email", "email"], recipients=["alice", " ops@example.com ", "*"],
    )  # fmt: skip
    assert spec.name == "Big accounts"
    assert spec.scope == {"segment": ["Enterprise"], "plan": ["gold"]}
    assert spec.channels == ("inapp", "email")
    assert spec.recipients == ("alice", "ops@example.com", "*")
    assert spec.hysteresis_margin == 5.0 and spec.params == {"threshold": 80.0}


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"name": " "}, "name", "name"),
        ({"kind": "vibes"}, "kind", "must be one of"),
        ({"params": {"threshold": 101}}, "threshold", "from 0 to 100"),
        ({"params": {"threshold": "high"}}, "threshold", "must be a number"),
        ({"params": {}}, "params", "needs threshold"),
        ({"params": {"threshold": 50, "days": 3}}, "params", "does not take days"),
        ({"kind": "score_rise", "params": {"points": 20, "days": 0}}, "days", "1 to 365"),
        ({"kind": "score_rise", "params": {"points": 0, "days": 5}}, "points", "above 0"),
        ({"kind": "band_change", "params": {"band": "low"}}, "band", "medium, high, critical"),
        ({"kind": "revenue_at_risk", "params": {"amount": -5}}, "amount", "above 0"),
        (
            {"kind": "model_drift", "params": {"psi": 0.2}, "scope": {"plan": "x"}},
            "scope",
            "whole runs",
        ),
        ({"scope": {"region": "EU"}}, "scope", "segment, plan, owner"),
        ({"severity": "urgent"}, "severity", "info, warning, critical"),
        ({"channels": ["sms"]}, "channels", "Unknown channel sms"),
        ({"recipients": ["mallory"]}, "recipients", "not a user, an e-mail address or a webhook"),
        ({"channels": ["webhook"], "recipients": ["alice"]}, "recipients", "webhook endpoint"),
        ({"channels": ["email"], "recipients": ["bob"]}, "recipients", "e-mail address"),
        ({"email_mode": "weekly"}, "email_mode", "immediate or digest"),
        ({"cooldown_hours": -1}, "cooldown_hours", "cool-down"),
        ({"hysteresis_margin": 80}, "hysteresis_margin", "never re-arm"),
    ],
)
def test_each_problem_names_its_field(fields: dict, field: str, words: str) -> None:
    found = problems(**fields)
    assert field in found, found
    assert words in found[field]


def test_all_problems_are_reported_at_once() -> None:
    found = problems(name="", severity="nope", channels=["fax"])
    assert set(found) == {"name", "severity", "channels"}


def test_kind_defaults_and_descriptions() -> None:
    drift = check(kind="model_drift", params={"psi": 0.2})
    assert drift.hysteresis_margin == pytest.approx(0.05)
    revenue = check(kind="revenue_at_risk", params={"amount": 2000})
    assert revenue.hysteresis_margin == 200
    assert describe("score_rise", {"points": 20, "days": 30}, {"segment": ["SMB"]}) == (
        "risk score up by ≥ 20 points within 30 days (segment: SMB)"
    )
    for spec in DEFAULT_RULES:  # the default set must always be valid, with no users at all
        validate_rule(spec, users={}, endpoints=())
