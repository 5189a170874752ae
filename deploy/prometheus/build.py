"""Builds what deploy/prometheus/rules.yml feeds, so the rules are written once.

    python deploy/prometheus/build.py                      # the PrometheusRule, from rules.yml
    python deploy/prometheus/build.py --runbook-base URL   # first, point every runbook_url at URL

URL is where docs/operations.md is published, e.g.
https://github.com/ACME/alert-publishing/blob/main/docs/operations.md: each rule's runbook_url is
URL#section, clickable from PagerDuty, Slack and Grafana. The base is rewritten in rules.yml and
in rules_test.yml (whose expected annotations promtool compares), then the Prometheus Operator's
PrometheusRule (deploy/kubernetes/components/prometheus-operator/) is written again.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules.yml"
RULES_TEST = HERE / "rules_test.yml"
PROMETHEUS_RULE = HERE.parent / "kubernetes" / "components" / "prometheus-operator" / "prometheusrule.yaml"
PLACEHOLDER_BASE = "https://github.com/OWNER/alert-publishing/blob/main/docs/operations.md"
_RUNBOOK = re.compile(r"(runbook_url: )(\S+?)(#[\w-]+)")
_HEADER = """\
# Generated from deploy/prometheus/rules.yml by `python deploy/prometheus/build.py`: edit the
# rules there (and their promtool tests), never here. A test fails when this file is stale.
"""


def runbook_bases(text: str) -> set[str]:
    return {match.group(2) for match in _RUNBOOK.finditer(text)}


def set_runbook_base(text: str, base: str) -> str:
    return _RUNBOOK.sub(lambda m: f"{m.group(1)}{base.rstrip('/')}{m.group(3)}", text)


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def prometheus_rule(rules: dict[str, Any]) -> str:
    """The ``monitoring.coreos.com/v1`` PrometheusRule holding the groups of ``rules``."""
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "alert-publishing",
            "namespace": "publishing",
            "labels": {
                "app.kubernetes.io/name": "alert-publishing",
                "app.kubernetes.io/part-of": "alert-publishing",
            },
        },
        "spec": {"groups": rules["groups"]},
    }
    return _HEADER + yaml.dump(resource, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runbook-base", metavar="URL", help="where docs/operations.md is published")
    args = parser.parse_args(argv)
    if args.runbook_base is not None:
        if not re.fullmatch(r"https?://[^/\s]+/\S*", args.runbook_base):
            parser.error("--runbook-base must be an absolute http(s) URL")
        for path in (RULES, RULES_TEST):
            path.write_text(set_runbook_base(path.read_text(), args.runbook_base))
    PROMETHEUS_RULE.write_text(prometheus_rule(yaml.safe_load(RULES.read_text())))
    print(f"wrote {PROMETHEUS_RULE.relative_to(HERE.parent.parent)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
