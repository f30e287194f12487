#!/usr/bin/env python3
"""Lint the Prometheus alerting rules in alerts/ (python3 standard library only).

Checks, for every alerting rule in alerts/*.rules.yml:
  * labels: `severity` is `page` or `ticket`; `service` is set (a fixed name, or the template
    `{{ $labels.service }}` when the expression keeps the service label);
  * annotations: `summary`, `description` (which must show the live value, `$value`) and
    `runbook_url` equal to RUNBOOK_BASE + <AlertName> + ".md";
  * the runbook file alerts/runbooks/<AlertName>.md exists and has the sections
    Meaning / Confirm / Mitigate / Escalate;
  * alert names are unique, `for:` durations are valid;
  * the promtool tests in alerts/tests/*.test.yml name the alert in a case where it fires
    (non-empty exp_alerts) and, except for Watchdog, in a case where it stays quiet
    (empty exp_alerts); every recording rule is evaluated by some promql_expr_test or feeds
    an alert that is tested.
Also: every runbook belongs to an alert; every alert is listed in alerts/README.md; test files
only load rule files that exist; the memory limits recorded as service:memory_limit_bytes equal
the containers' memory in deploy/ecs-task-defs/<service>.json (where those files exist).

With --amtool, each alert's labels are also resolved through alerts/alertmanager.yml with
`amtool config routes test` and must reach the receiver its severity promises.

The YAML reader below understands the block-style subset these files are written in
(mappings, sequences, plain/quoted scalars, | and > block scalars, simple flow sequences and
mappings); anything else is reported as an error rather than guessed at.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys

RUNBOOK_BASE = "https://github.com/casino/platform/blob/main/alerts/runbooks/"
SEVERITIES = ("page", "ticket")
RUNBOOK_SECTIONS = ("## Meaning", "## Confirm", "## Mitigate", "## Escalate")
# Alerts that can never be quiet, so need no "stays quiet" test.
ALWAYS_FIRING = {"Watchdog"}
EXPECTED_RECEIVERS = {"page": "pagerduty-page,slack-page", "ticket": "slack-ticket"}
DURATION_RE = re.compile(r"^((\d+)(ms|s|m|h|d|w|y))+$")


# --------------------------------------------------------------------------- YAML subset


class YamlError(Exception):
    pass


def _strip_comment(line):
    """Remove a trailing comment that is outside quotes."""
    quote, i = None, 0
    while i < len(line):
        ch = line[i]
        if quote == "'":
            if ch == "'" and line[i + 1:i + 2] == "'":
                i += 2  # '' is an escaped quote
                continue
            if ch == "'":
                quote = None
        elif quote == '"':
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                quote = None
        elif ch in ("'", '"') and (i == 0 or line[i - 1] in " \t[{,:-"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
        i += 1
    return line.rstrip()


def _split_flow(text):
    """Split the inside of a flow collection at top-level commas."""
    parts, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _find_colon(text):
    """Index of the `key: value` colon outside quotes and flow brackets, or -1."""
    quote, depth = None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"" and i == 0:
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == ":" and depth == 0 and (i + 1 == len(text) or text[i + 1] in " \t"):
            return i
    return -1


def _scalar(text, where):
    text = text.strip()
    if text == "":
        return None
    if text[0] == "'":
        if not text.endswith("'") or len(text) < 2:
            raise YamlError(f"{where}: unterminated single-quoted string")
        return text[1:-1].replace("''", "'")
    if text[0] == '"':
        if not text.endswith('"') or len(text) < 2:
            raise YamlError(f"{where}: unterminated double-quoted string")
        body = text[1:-1]
        return (body.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t")
                .replace("\\\\", "\\"))
    if text[0] == "[":
        if not text.endswith("]"):
            raise YamlError(f"{where}: flow sequence must close on the same line")
        return [_scalar(p, where) for p in _split_flow(text[1:-1])]
    if text[0] == "{":
        if not text.endswith("}"):
            raise YamlError(f"{where}: flow mapping must close on the same line")
        out = {}
        for part in _split_flow(text[1:-1]):
            c = _find_colon(part)
            if c < 0:
                raise YamlError(f"{where}: bad flow mapping entry {part!r}")
            out[_scalar(part[:c], where)] = _scalar(part[c + 1:], where)
        return out
    if text[0] in "&*!|>%@`":
        raise YamlError(f"{where}: unsupported YAML syntax {text[:20]!r}")
    return text


class _Reader:
    """Recursive reader over raw lines; every parse method returns (value, next raw index)."""

    def __init__(self, text, name):
        self.name = name
        self.raw = text.split("\n")

    # -- line helpers
    def _next(self, i):
        """Index of the first meaningful (non-blank, non-comment) line at or after i, or None."""
        while i < len(self.raw):
            stripped = _strip_comment(self.raw[i]).strip()
            if stripped and stripped != "---":
                return i
            i += 1
        return None

    def _indent(self, i):
        line = self.raw[i]
        lead = line[: len(line) - len(line.lstrip())]
        if "\t" in lead:
            raise YamlError(f"{self.name}:{i + 1}: tab in indentation")
        return len(lead)

    def _text(self, i):
        return _strip_comment(self.raw[i]).strip()

    def _is_item(self, i):
        t = self._text(i)
        return t == "-" or t.startswith("- ")

    def _where(self, i):
        return f"{self.name}:{i + 1}"

    # -- document
    def parse(self):
        i = self._next(0)
        if i is None:
            return None
        value, nxt = self._node(i, self._indent(i))
        j = self._next(nxt)
        if j is not None:
            raise YamlError(f"{self._where(j)}: unexpected content (bad indentation?)")
        return value

    def _node(self, i, indent):
        if self._is_item(i):
            return self._sequence(i, indent)
        return self._mapping(i, indent)

    def _value(self, i, rest, key_indent):
        """The value after `key:` on line i; rest = the text after the colon."""
        rest = rest.strip()
        if rest in ("|", "|-", "|+", ">", ">-", ">+"):
            return self._block_scalar(i + 1, key_indent, rest)
        if rest:
            return _scalar(rest, self._where(i)), i + 1
        j = self._next(i + 1)
        if j is not None and self._indent(j) > key_indent:
            return self._node(j, self._indent(j))
        if j is not None and self._indent(j) == key_indent and self._is_item(j):
            return self._sequence(j, key_indent)  # `key:` then `- item` at the same indent
        return None, i + 1

    def _block_scalar(self, i, key_indent, style):
        lines, j, content_indent = [], i, None
        while j < len(self.raw):
            line = self.raw[j]
            if line.strip() == "":
                lines.append("")
                j += 1
                continue
            ind = len(line) - len(line.lstrip(" "))
            if ind <= key_indent or (content_indent is not None and ind < content_indent):
                break
            if content_indent is None:
                content_indent = ind
            lines.append(line[content_indent:])
            j += 1
        while lines and lines[-1] == "":
            lines.pop()
        if style.startswith("|"):
            text = "\n".join(lines)
        else:  # folded: lines of a paragraph join with spaces, blank lines become newlines
            paras, cur = [], []
            for ln in lines:
                if ln == "":
                    paras.append(" ".join(cur))
                    cur = []
                else:
                    cur.append(ln)
            paras.append(" ".join(cur))
            text = "\n".join(paras)
        if not style.endswith("-") and lines:
            text += "\n"
        return text, j

    def _mapping(self, i, indent, out=None):
        out = {} if out is None else out
        while i is not None:
            ind = self._indent(i)
            if ind < indent or (ind == indent and self._is_item(i)):
                break
            if ind > indent:
                raise YamlError(f"{self._where(i)}: unexpected indentation")
            text = self._text(i)
            c = _find_colon(text)
            if c < 0:
                raise YamlError(f"{self._where(i)}: expected `key: value`, got {text!r} "
                                "(multi-line plain scalars are not supported: use >- or |)")
            key = _scalar(text[:c], self._where(i))
            if key in out:
                raise YamlError(f"{self._where(i)}: duplicate key {key!r}")
            out[key], nxt = self._value(i, text[c + 1:], indent)
            i = self._next(nxt)
        return out, (len(self.raw) if i is None else i)

    def _sequence(self, i, indent):
        out = []
        while i is not None:
            ind = self._indent(i)
            if ind < indent or not self._is_item(i):
                if ind > indent:
                    raise YamlError(f"{self._where(i)}: unexpected indentation")
                break
            if ind > indent:
                raise YamlError(f"{self._where(i)}: unexpected indentation")
            line = _strip_comment(self.raw[i])
            after_dash = line[ind + 1:]
            item = after_dash.strip()
            item_indent = ind + 1 + (len(after_dash) - len(after_dash.lstrip(" ")))
            if item == "-" or item.startswith("- "):
                raise YamlError(f"{self._where(i)}: `- - item` (a sequence inside a sequence on one "
                                "line) is not supported")
            if item == "":
                j = self._next(i + 1)
                if j is not None and self._indent(j) > indent:
                    value, nxt = self._node(j, self._indent(j))
                else:
                    value, nxt = None, i + 1
            elif item[0] not in "[{'\"" and _find_colon(item) >= 0:
                # a mapping that starts on the dash line and continues at item_indent
                c = _find_colon(item)
                key = _scalar(item[:c], self._where(i))
                first, nxt = self._value(i, item[c + 1:], item_indent)
                value = {key: first}
                j = self._next(nxt)
                if j is not None and self._indent(j) == item_indent and not self._is_item(j):
                    value, nxt = self._mapping(j, item_indent, value)
            else:
                value, nxt = _scalar(item, self._where(i)), i + 1
            out.append(value)
            i = self._next(nxt)
        return out, (len(self.raw) if i is None else i)


def load_yaml(path):
    with open(path, encoding="utf-8") as fh:
        return _Reader(fh.read(), path).parse()


# --------------------------------------------------------------------------- rule files


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_rules(alerts_dir):
    """Return (alerts, records, errors): alerts = [(file, group, rule)], records likewise."""
    alerts, records, errors = [], [], []
    files = sorted(glob.glob(os.path.join(alerts_dir, "*.rules.yml")))
    if not files:
        errors.append(f"no rule files in {alerts_dir}")
    for path in files:
        try:
            doc = load_yaml(path)
        except (YamlError, OSError) as exc:
            errors.append(str(exc))
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list):
            errors.append(f"{path}: no `groups:` list")
            continue
        for group in doc["groups"]:
            for rule in group.get("rules") or []:
                if "alert" in rule:
                    alerts.append((path, group.get("name"), rule))
                elif "record" in rule:
                    records.append((path, group.get("name"), rule))
                else:
                    errors.append(f"{path}: rule without `alert` or `record` in group {group.get('name')}")
    return alerts, records, errors


def load_tests(tests_dir):
    """Return (fires, quiet, expr_tests, errors) collected from the promtool test files."""
    fires, quiet, exprs, errors = {}, {}, [], []
    files = sorted(glob.glob(os.path.join(tests_dir, "*.test.yml")))
    if not files:
        errors.append(f"no test files in {tests_dir}")
    for path in files:
        try:
            doc = load_yaml(path)
        except (YamlError, OSError) as exc:
            errors.append(str(exc))
            continue
        for rf in doc.get("rule_files") or []:
            if not os.path.exists(os.path.join(os.path.dirname(path), rf)):
                errors.append(f"{path}: rule file {rf} does not exist")
        for case in doc.get("tests") or []:
            for art in case.get("alert_rule_test") or []:
                name = art.get("alertname")
                target = fires if art.get("exp_alerts") else quiet
                target.setdefault(name, []).append(f"{os.path.basename(path)}: {case.get('name')}")
            for pet in case.get("promql_expr_test") or []:
                exprs.append(pet.get("expr") or "")
    return fires, quiet, exprs, errors


def lint(root, use_amtool=False):
    alerts_dir = os.path.join(root, "alerts")
    runbooks_dir = os.path.join(alerts_dir, "runbooks")
    errors = []
    alerts, records, errs = load_rules(alerts_dir)
    errors += errs
    fires, quiet, expr_tests, errs = load_tests(os.path.join(alerts_dir, "tests"))
    errors += errs

    seen = {}
    for path, group, rule in alerts:
        name = rule["alert"]
        where = f"{os.path.relpath(path, root)}: {name}"
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]+", name or ""):
            errors.append(f"{where}: alert names are CamelCase")
        if name in seen:
            errors.append(f"{where}: alert name also used in {seen[name]}")
        seen[name] = os.path.relpath(path, root)
        labels = rule.get("labels") or {}
        ann = rule.get("annotations") or {}
        if labels.get("severity") not in SEVERITIES:
            errors.append(f"{where}: label severity must be one of {SEVERITIES}, got {labels.get('severity')!r}")
        svc = labels.get("service")
        if not svc:
            errors.append(f"{where}: label service missing")
        elif "{{" in svc and svc.strip() != "{{ $labels.service }}":
            errors.append(f"{where}: templated service label must be exactly '{{{{ $labels.service }}}}'")
        for key in ("summary", "description", "runbook_url"):
            if not (ann.get(key) or "").strip():
                errors.append(f"{where}: annotation {key} missing")
        if "$value" not in (ann.get("description") or ""):
            errors.append(f"{where}: description must show the live value ({{{{ $value }}}})")
        want = f"{RUNBOOK_BASE}{name}.md"
        if ann.get("runbook_url") != want:
            errors.append(f"{where}: runbook_url must be {want}, got {ann.get('runbook_url')!r}")
        rb = os.path.join(runbooks_dir, f"{name}.md")
        if not os.path.isfile(rb):
            errors.append(f"{where}: runbook {os.path.relpath(rb, root)} missing")
        else:
            with open(rb, encoding="utf-8") as fh:
                text = fh.read()
            for section in RUNBOOK_SECTIONS:
                if section not in text:
                    errors.append(f"{os.path.relpath(rb, root)}: section '{section}' missing")
            if f"# {name}" not in text.splitlines()[0]:
                errors.append(f"{os.path.relpath(rb, root)}: first line must be '# {name}'")
        if "for" in rule and not DURATION_RE.match(str(rule["for"])):
            errors.append(f"{where}: bad for: duration {rule['for']!r}")
        if name not in fires:
            errors.append(f"{where}: no promtool test where it fires (alert_rule_test with exp_alerts)")
        if name not in quiet and name not in ALWAYS_FIRING:
            errors.append(f"{where}: no promtool test where it stays quiet (exp_alerts: [])")

    for name in sorted(set(fires) | set(quiet)):
        if name not in seen:
            errors.append(f"alerts/tests: test names unknown alert {name!r}")

    readme = os.path.join(alerts_dir, "README.md")
    if os.path.isfile(readme):
        with open(readme, encoding="utf-8") as fh:
            listed = fh.read()
        for name in sorted(seen):
            if f"[{name}]" not in listed:
                errors.append(f"alerts/README.md: alert {name} missing from the alert table")
    else:
        errors.append("alerts/README.md missing")

    if os.path.isdir(runbooks_dir):
        for rb in sorted(glob.glob(os.path.join(runbooks_dir, "*.md"))):
            name = os.path.basename(rb)[:-3]
            if name not in seen:
                errors.append(f"{os.path.relpath(rb, root)}: runbook for unknown alert {name!r}")

    # Recording rules: each must be exercised by a promql_expr_test, or by a tested alert.
    alert_exprs = " ".join(rule.get("expr") or "" for _, _, rule in alerts if rule["alert"] in fires)
    test_exprs = " ".join(expr_tests)
    for path, group, rule in records:
        rec = rule["record"]
        if rec not in test_exprs and rec not in alert_exprs:
            errors.append(f"{os.path.relpath(path, root)}: recording rule {rec} is not tested")

    errors += check_memory_limits(root, records)

    if use_amtool:
        errors += check_routes(root, alerts)

    return alerts, records, errors


def check_memory_limits(root, records):
    """service:memory_limit_bytes must equal the container's hard memory limit in its ECS task
    definition (deploy/ecs-task-defs/<service>.json), when that file exists."""
    errors = []
    for path, _, rule in records:
        if rule["record"] != "service:memory_limit_bytes":
            continue
        service = (rule.get("labels") or {}).get("service")
        m = re.fullmatch(r"\s*vector\((\d+)\)\s*", rule.get("expr") or "")
        if not service or not m:
            errors.append(f"{os.path.relpath(path, root)}: service:memory_limit_bytes needs "
                          "`expr: vector(<bytes>)` and a service label")
            continue
        task_def = os.path.join(root, "deploy", "ecs-task-defs", f"{service}.json")
        if not os.path.isfile(task_def):
            continue
        try:
            with open(task_def, encoding="utf-8") as fh:
                doc = json.load(fh)
            mib = next(c.get("memory") for c in doc["containerDefinitions"] if c.get("name") == service)
        except (OSError, ValueError, KeyError, StopIteration) as exc:
            errors.append(f"{os.path.relpath(task_def, root)}: cannot read the {service} container's memory ({exc!r})")
            continue
        if mib is None or int(mib) * 1024 * 1024 != int(m.group(1)):
            errors.append(f"{os.path.relpath(path, root)}: service:memory_limit_bytes{{service=\"{service}\"}} = "
                          f"{m.group(1)} bytes, but {os.path.relpath(task_def, root)} gives the container "
                          f"{mib} MiB")
    return errors


def check_routes(root, alerts):
    amtool = shutil.which("amtool")
    if not amtool:
        return ["--amtool given but amtool is not installed"]
    config = os.path.join(root, "alerts", "alertmanager.yml")
    errors = []
    for _, _, rule in alerts:
        name = rule["alert"]
        labels = dict(rule.get("labels") or {})
        if "{{" in labels.get("service", ""):
            labels["service"] = "vault"
        labels["alertname"] = name
        want = "deadman" if name == "Watchdog" else EXPECTED_RECEIVERS.get(labels.get("severity"), "?")
        args = [amtool, "config", "routes", "test", f"--config.file={config}",
                f"--verify.receivers={want}"] + [f"{k}={v}" for k, v in sorted(labels.items())]
        proc = subprocess.run(args, capture_output=True, text=True)
        if proc.returncode != 0:
            got = proc.stdout.strip().splitlines()[:1]
            errors.append(f"alertmanager.yml: {name} routes to {got}, expected {want}")
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=repo_root(), help="repository root (default: this script's repo)")
    ap.add_argument("--amtool", action="store_true", help="also check routing with amtool")
    args = ap.parse_args()
    alerts, records, errors = lint(args.root, args.amtool)
    for e in errors:
        print(f"lint_alerts: {e}", file=sys.stderr)
    print(f"lint_alerts: {len(alerts)} alerts, {len(records)} recording rules, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
