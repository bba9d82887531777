"""The shipped alert rules and dashboard (infra/monitoring/) speak of metrics the services
export, and every PromQL expression in them parses (promql-parser; no promtool here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import promql_parser
import pytest
import yaml

from wegweiser.platform.metrics import metrics

MONITORING = Path(__file__).resolve().parents[2] / "infra" / "monitoring"
RULES = yaml.safe_load((MONITORING / "alerts.yml").read_text())
DASHBOARD = json.loads((MONITORING / "grafana-dashboard.json").read_text())
EXPORTED = {m._name for m in vars(metrics()).values()}
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def named(expr: str) -> set[str]:
    """The metric names an expression reads, without their series suffix."""
    found = set(re.findall(r"\b(wegweiser_[a-z_]+)", expr))
    return {next((n.removesuffix(s) for s in SUFFIXES if n.endswith(s)), n) for n in found}


RULE_LIST = [rule for group in RULES["groups"] for rule in group["rules"]]
TARGETS = [t["expr"] for panel in DASHBOARD["panels"] for t in panel["targets"]]


@pytest.mark.parametrize("rule", RULE_LIST, ids=[r["alert"] for r in RULE_LIST])
def test_every_alert_parses_reads_exported_metrics_and_says_what_to_do(rule) -> None:
    promql_parser.parse(rule["expr"])
    assert named(rule["expr"]) and named(rule["expr"]) <= EXPORTED, named(rule["expr"])
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]


@pytest.mark.parametrize("expr", TARGETS)
def test_every_dashboard_query_parses_and_reads_exported_metrics(expr: str) -> None:
    promql_parser.parse(expr)
    assert named(expr) and named(expr) <= EXPORTED, named(expr)


def test_a_broken_expression_is_caught() -> None:
    with pytest.raises(ValueError, match="unclosed left parenthesis"):
        promql_parser.parse("max by (service) (wegweiser_outbox_backlog > ")
