#!/usr/bin/env python3
"""Lint the Grafana dashboards in dashboards/ (python3 standard library only).

Checks every dashboards/*.json:
  * it parses, has a title, a uid unique across all dashboards and a schemaVersion;
  * data sources are templated: each panel and query names a data source variable
    (`${datasource}` of type prometheus, `${cloudwatch}` of type cloudwatch) defined in
    `templating`, never a fixed uid;
  * every panel has a title; every non-row panel has a description, a unit
    (fieldConfig.defaults.unit, a Grafana unit id or a custom `suffix:`/`prefix:` unit) and at
    least one query; Prometheus queries have an `expr`, CloudWatch ones a namespace and metric;
  * panel ids are unique within a dashboard; recording-rule names a panel uses exist in
    alerts/*.rules.yml.
With --promtool, every panel expression is also parsed by `promtool check rules` (Grafana's
$__rate_interval, $__interval and $__range are replaced by fixed durations first).

With --metrics, prints instead the sorted set of metric names used by all alert/recording
rules and all dashboard queries, one per line: label matchers, functions, keywords, durations
and by/without/on/ignoring label lists are stripped; histogram series keep their _bucket,
_sum or _count suffix as written; names produced by our own recording rules are left out
(add --include-recorded to list them too).

With --exprs, prints instead a JSON array of every Prometheus query of the dashboards (panel
targets and template-variable queries; CloudWatch ones are not Prometheus and are left out), each
`{"dashboard", "panel", "ref", "expr"}` with `expr` ready for Prometheus's /api/v1/query: Grafana's
$__rate_interval, $__interval and $__range replaced as for --promtool, and any other `$var`,
`${var}`, `${var:format}` or `[[var]]` template variable by `.*` (match-all in a regex matcher).
The live check (tools/casino/tests/live_alerts.rs) runs every one against a running Prometheus.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in scripts/ from the import below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lint_alerts  # noqa: E402  (the YAML reader and the rule loader live there)

PROMQL_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                   "group_right", "offset", "bool", "inf", "nan", "start", "end"}
KNOWN_UNITS = {
    "none", "short", "string", "percent", "percentunit", "locale", "sci",
    "ns", "µs", "ms", "s", "m", "h", "d", "dtdurationms", "dtdurations", "dthms", "dtdhms",
    "clockms", "clocks", "hertz", "dateTimeAsIso", "dateTimeAsUS", "dateTimeFromNow",
    "bits", "bytes", "kbytes", "mbytes", "gbytes", "decbits", "decbytes", "deckbytes",
    "decmbytes", "decgbytes", "pps", "bps", "Bps", "KBs", "Kbits", "MBs", "Mbits", "GBs", "Gbits",
    "cps", "ops", "reqps", "rps", "wps", "iops", "cpm", "opm", "rpm", "wpm",
    "currencyEUR", "currencyUSD", "currencyGBP", "currencyJPY", "currencyBTC",
}
DS_TYPES = {"prometheus", "cloudwatch"}
GRAFANA_VARS = {"$__rate_interval": "5m", "${__rate_interval}": "5m", "$__interval": "1m",
                "${__interval}": "1m", "$__range": "1h", "${__range}": "1h"}


# ------------------------------------------------------------------------ PromQL names


def substitute(expr):
    """`expr` with Grafana's built-in intervals and template variables replaced (see --exprs)."""
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return re.sub(r"\$\{\w+(?::[^}]*)?\}|\[\[\w+(?::[^\]]*)?\]\]|\$[A-Za-z_]\w*", ".*", expr)


def metric_names(expr):
    """Metric names referenced by a PromQL expression (a best-effort lexical parse)."""
    s = expr
    s = re.sub(r'"(?:\\.|[^"\\])*"', " ", s)            # string literals (label values, args)
    s = re.sub(r"'(?:\\.|[^'\\])*'", " ", s)
    s = re.sub(r"`[^`]*`", " ", s)
    s = re.sub(r"\$\{[^}]*\}|\$[A-Za-z_]\w*", " ", s)    # Grafana variables
    s = re.sub(r"#[^\n]*", " ", s)                      # comments
    s = re.sub(r"\{[^}]*\}", " ", s)                    # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)                   # range and subquery windows
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\boffset\s+-?[0-9A-Za-z]+", " ", s)     # offset 1h
    s = re.sub(r"@\s*(?:start\s*\(\s*\)|end\s*\(\s*\)|[0-9.]+)", " ", s)
    names = set()
    token = re.compile(r"0x[0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?[A-Za-z]*"
                       r"|\.[0-9]+|[A-Za-z_:][A-Za-z0-9_:]*")
    for m in token.finditer(s):
        tok = m.group(0)
        if tok[0].isdigit() or tok[0] == ".":
            continue
        if tok.lower() in PROMQL_KEYWORDS:
            continue
        if s[m.end():].lstrip().startswith("("):
            continue                                    # a function or an aggregation
        names.add(tok)
    return names


def templating_exprs(query):
    """PromQL inside a Grafana template variable query (label_values / query_result)."""
    if isinstance(query, dict):
        query = query.get("query", "")
    if not isinstance(query, str):
        return []
    m = re.match(r"^\s*label_values\((.*)\)\s*$", query, re.S)
    if m:
        args = lint_alerts._split_flow(m.group(1))
        return [args[0]] if len(args) == 2 else []
    m = re.match(r"^\s*query_result\((.*)\)\s*$", query, re.S)
    if m:
        return [m.group(1)]
    if re.match(r"^\s*(label_names|metrics)\(", query):
        return []
    return [query] if query.strip() else []


# ------------------------------------------------------------------------ dashboards


def walk_panels(panels):
    for p in panels or []:
        yield p
        if p.get("type") == "row":
            yield from walk_panels(p.get("panels"))


def ds_ref(value):
    """(type, uid) of a datasource reference; strings are legacy names."""
    if isinstance(value, dict):
        return value.get("type"), value.get("uid")
    return None, value


def lint_dashboard(path, doc, errors, details=None):
    """Check one dashboard; its Prometheus expressions. With `details` (a list), also append
    `{"dashboard", "panel", "ref", "expr"}` for each of them (expr as written)."""
    name = os.path.basename(path)
    exprs = []
    details = [] if details is None else details
    for key in ("uid", "title", "schemaVersion"):
        if not doc.get(key):
            errors.append(f"{name}: `{key}` missing")
    if isinstance(doc.get("schemaVersion"), int) and doc["schemaVersion"] < 36:
        errors.append(f"{name}: schemaVersion {doc['schemaVersion']} is older than 36")
    variables = {}
    for var in (doc.get("templating") or {}).get("list") or []:
        if var.get("type") == "datasource":
            variables[var.get("name")] = var.get("query")
        elif var.get("type") == "query":
            t, uid = ds_ref(var.get("datasource"))
            if t == "prometheus" or t is None:
                for e in templating_exprs(var.get("query")):
                    exprs.append(e)
                    details.append({"dashboard": name, "panel": f"variable {var.get('name')}",
                                    "ref": None, "expr": e})
    for var, kind in variables.items():
        if kind not in DS_TYPES:
            errors.append(f"{name}: datasource variable {var} has unexpected type {kind!r}")
    if not variables:
        errors.append(f"{name}: no datasource template variable")

    def check_ds(where, value):
        t, uid = ds_ref(value)
        if uid is None:
            return None
        m = re.fullmatch(r"\$\{(\w+)\}|\$(\w+)", str(uid))
        if not m:
            errors.append(f"{where}: datasource uid {uid!r} is not a template variable")
            return None
        var = m.group(1) or m.group(2)
        if var not in variables:
            errors.append(f"{where}: datasource variable ${{{var}}} is not defined in templating")
            return None
        if t and t != variables[var]:
            errors.append(f"{where}: datasource type {t!r} does not match ${{{var}}} ({variables[var]})")
        return variables[var]

    ids = set()
    for panel in walk_panels(doc.get("panels")):
        title = (panel.get("title") or "").strip()
        where = f"{name}: panel {title or panel.get('id')!r}"
        if not title:
            errors.append(f"{where}: no title")
        pid = panel.get("id")
        if pid in ids:
            errors.append(f"{where}: duplicate panel id {pid}")
        ids.add(pid)
        if "gridPos" not in panel:
            errors.append(f"{where}: no gridPos")
        if panel.get("type") == "row":
            continue
        if not (panel.get("description") or "").strip():
            errors.append(f"{where}: no description")
        unit = ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
        if not unit:
            errors.append(f"{where}: no unit (fieldConfig.defaults.unit)")
        elif unit not in KNOWN_UNITS and not re.match(r"^(suffix|prefix|si|count|currency):", unit):
            errors.append(f"{where}: unknown unit {unit!r}")
        panel_kind = check_ds(where, panel.get("datasource"))
        if panel.get("datasource") is None:
            errors.append(f"{where}: no datasource")
        targets = panel.get("targets") or []
        if not targets:
            errors.append(f"{where}: no queries")
        for t in targets:
            kind = check_ds(f"{where} query {t.get('refId')}", t.get("datasource")) or panel_kind
            if kind == "prometheus":
                if not (t.get("expr") or "").strip():
                    errors.append(f"{where} query {t.get('refId')}: empty expr")
                else:
                    exprs.append(t["expr"])
                    details.append({"dashboard": name, "panel": title or str(panel.get("id")),
                                    "ref": t.get("refId"), "expr": t["expr"]})
            elif kind == "cloudwatch":
                if not t.get("namespace") or not t.get("metricName"):
                    errors.append(f"{where} query {t.get('refId')}: CloudWatch query needs namespace and metricName")
    return exprs


def load_dashboards(root, errors, details=None):
    files = sorted(glob.glob(os.path.join(root, "dashboards", "*.json")))
    if not files:
        errors.append("no dashboards in dashboards/")
    uids, all_exprs = {}, []
    for path in files:
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError) as exc:
            errors.append(f"{os.path.basename(path)}: {exc}")
            continue
        uid = doc.get("uid")
        if uid in uids:
            errors.append(f"{os.path.basename(path)}: uid {uid!r} also used by {uids[uid]}")
        uids[uid] = os.path.basename(path)
        all_exprs += [(os.path.basename(path), e)
                      for e in lint_dashboard(path, doc, errors, details)]
    return files, all_exprs


def promtool_check(exprs, errors):
    promtool = shutil.which("promtool")
    if not promtool:
        errors.append("--promtool given but promtool is not installed")
        return
    lines = ["groups:", "  - name: dashboard-expressions", "    rules:"]
    for i, (_, expr) in enumerate(exprs):
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        lines.append(f"      - record: dashboard_panel_{i}")
        lines.append("        expr: " + json.dumps(expr))
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as fh:
        fh.write("\n".join(lines) + "\n")
        tmp = fh.name
    try:
        proc = subprocess.run([promtool, "check", "rules", "--lint=none", tmp],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).strip()
            for m in re.finditer(r"dashboard_panel_(\d+)", out):
                i = int(m.group(1))
                errors.append(f"{exprs[i][0]}: promtool rejects {exprs[i][1]!r}")
            errors.append("promtool: " + out.splitlines()[-1] if out else "promtool failed")
    finally:
        os.unlink(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=lint_alerts.repo_root())
    ap.add_argument("--metrics", action="store_true",
                    help="print the metric names used by rules and dashboards, then exit")
    ap.add_argument("--include-recorded", action="store_true",
                    help="with --metrics: also list names produced by our recording rules")
    ap.add_argument("--promtool", action="store_true", help="also parse panel queries with promtool")
    ap.add_argument("--exprs", action="store_true",
                    help="print every Prometheus panel query, variables substituted, as JSON, then exit")
    args = ap.parse_args()

    errors = []
    alerts, records, rule_errors = lint_alerts.load_rules(os.path.join(args.root, "alerts"))
    recorded = {r["record"] for _, _, r in records}
    details = []
    files, exprs = load_dashboards(args.root, errors, details)

    if args.exprs:
        for e in errors:
            print(f"lint_dashboards: {e}", file=sys.stderr)
        print(json.dumps([dict(d, expr=substitute(d["expr"])) for d in details], indent=1))
        return 1 if errors else 0

    if args.metrics:
        names = set()
        for _, _, rule in alerts + records:
            names |= metric_names(rule.get("expr") or "")
        for _, expr in exprs:
            names |= metric_names(expr)
        if not args.include_recorded:
            names -= recorded
        problems = errors + rule_errors
        for e in problems:
            print(f"lint_dashboards: {e}", file=sys.stderr)
        print("\n".join(sorted(names)))
        return 1 if problems else 0

    for dash, expr in exprs:
        for n in metric_names(expr):
            if ":" in n and n not in recorded:
                errors.append(f"{dash}: uses {n}, which no recording rule in alerts/ produces")
    if args.promtool:
        promtool_check(exprs, errors)
    for e in errors:
        print(f"lint_dashboards: {e}", file=sys.stderr)
    print(f"lint_dashboards: {len(files)} dashboards, {len(exprs)} queries, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
