#!/usr/bin/env python3
"""Copy Prometheus rule files, shortening every `for:` duration; nothing else changes.

    python3 alerts/tools/shorten_for.py IN_DIR OUT_DIR SECONDS

Reads IN_DIR/*.rules.yml and writes files of the same names to OUT_DIR (created if needed),
where every `for: <duration>` longer than SECONDS becomes `for: <SECONDS>s`. Shorter ones
and rules without `for:` are left as they are, and every other byte of each file (expressions,
labels, annotations, comments) is copied unchanged, so a live test that loads OUT_DIR fires
the shipped expressions, only sooner. Windows inside expressions ([5m], offset 1d) are not
touched: shortening them would test different expressions.

Prints one line per changed rule to stderr and a summary line to stdout. Python standard
library only; the rewrite is line-based so the output keeps the input's layout.
"""

import glob
import os
import re
import sys

FOR_LINE = re.compile(r"^(?P<lead>\s*)for:(?P<sp>\s*)(?P<dur>[^\s#]+)(?P<tail>\s*(#.*)?)$")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def seconds(duration):
    """Seconds in a Prometheus duration such as 1h30m; ValueError if it is not one."""
    text = duration.strip("'\"")
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * UNIT_SECONDS[u] for n, u in parts)


def shorten(text, limit, name="<input>"):
    """Return (new_text, changes) with `for:` values above `limit` seconds set to `limit`s."""
    out, changes, alert = [], [], None
    for number, line in enumerate(text.split("\n"), 1):
        m_alert = re.match(r"^\s*-?\s*alert:\s*(\S+)", line)
        if m_alert:
            alert = m_alert.group(1)
        m = FOR_LINE.match(line)
        if m:
            old = seconds(m.group("dur"))
            if old > limit:
                line = f"{m.group('lead')}for:{m.group('sp') or ' '}{limit}s{m.group('tail')}"
                changes.append(f"{name}:{number}: {alert}: for {m.group('dur')} -> {limit}s")
        out.append(line)
    return "\n".join(out), changes


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    in_dir, out_dir, limit_arg = argv[1], argv[2], argv[3]
    try:
        limit = int(limit_arg)
        if limit < 0:
            raise ValueError
    except ValueError:
        print(f"shorten_for: SECONDS must be a whole number >= 0, got {limit_arg!r}", file=sys.stderr)
        return 2
    files = sorted(glob.glob(os.path.join(in_dir, "*.rules.yml")))
    if not files:
        print(f"shorten_for: no *.rules.yml in {in_dir}", file=sys.stderr)
        return 1
    if os.path.abspath(in_dir) == os.path.abspath(out_dir):
        print("shorten_for: OUT_DIR must differ from IN_DIR (the shipped files stay as they are)",
              file=sys.stderr)
        return 2
    os.makedirs(out_dir, exist_ok=True)
    total = 0
    for path in files:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        try:
            new, changes = shorten(text, limit, os.path.basename(path))
        except ValueError as exc:
            print(f"shorten_for: {path}: {exc}", file=sys.stderr)
            return 1
        with open(os.path.join(out_dir, os.path.basename(path)), "w", encoding="utf-8") as fh:
            fh.write(new)
        for change in changes:
            print(change, file=sys.stderr)
        total += len(changes)
    print(f"shorten_for: {len(files)} files copied to {out_dir}, {total} for: durations set to {limit}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
