#!/usr/bin/env python3
"""`terraform validate` of infra/terraform on a temporary copy, with the providers of a local plugin dir.

Every directory of infra/terraform that holds .tf files is validated on its own (the root module, and
each module as if it were a root: its inputs unknown), except those listed in NOT_VALIDATED with the
reason. The root's validation also validates every module in the context of the root's calls.

The copy lives under --work, so no .terraform directory and no .terraform.lock.hcl is ever written into
the repository; the rest of the repository is symlinked next to the copy, so the root's
`${path.module}/../../deploy/...` file reads resolve to the real files.

The one substitution (the archive provider is not on this machine): in the copy, every
`data "archive_file" "X"` block is blanked (its lines kept, as comments, so diagnostics keep the
repository's line numbers) and a `local.stub_archive_file_X` with the same instance keys and exactly
the attributes of archive_file (arguments as written, the others null, computed attributes as
placeholders of the provider's types) is appended to the same file; the references
`data.archive_file.X` are rewritten to it, and `archive` is removed from the copy's required_providers.
Each substitution is printed as a `note stubbed: ...` line. What the stub does not prove: that the
archive provider accepts the arguments, or that the zip is built (the canaries' bundle is built and
checked by the canaries step of check-infra).

Usage: tf_validate.py --repo DIR --plugin-dir DIR --work DIR [--source DIR] [--only DIR,...] [--jobs N]
  --work    scratch directory to create (must not exist)
  --source  the infra/terraform to copy, if not REPO/infra/terraform (the self-test's mutated copy)
  --only    module directories relative to infra/terraform ("." is the root), e.g. --only modules/alb
Exit 1 on any error (or warning) of `terraform validate`, or if a stub cannot be made.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TF_DIR = "infra/terraform"

# Directories with .tf files that are not validated here, and why. Anything else that cannot be
# initialised with the plugin dir fails the step: nothing is skipped silently.
NOT_VALIDATED = {
    "grafana-dashboards": "second root module; needs the grafana/grafana provider, which is not on this machine",
}

# Copied into the work dir? Not these (build output, provider state, pinned provider hashes).
COPY_IGNORE = shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.*", "build",
                                     "node_modules")

# Schema of the archive provider's archive_file data source (hashicorp/archive 2.x).
ARCHIVE_FILE_ARGUMENTS = [
    "type", "output_path", "output_file_mode", "source_file", "source_dir", "source_content",
    "source_content_filename", "excludes", "exclude_symlink_directories",
]
ARCHIVE_FILE_COMPUTED = {  # attribute -> placeholder of its type
    "id": '"' + "0" * 40 + '"',
    "output_size": "0",
    "output_sha": '"' + "0" * 40 + '"',
    "output_sha256": '"' + "0" * 64 + '"',
    "output_sha512": '"' + "0" * 128 + '"',
    "output_md5": '"' + "0" * 32 + '"',
    "output_base64sha256": '"' + base64.b64encode(bytes(32)).decode() + '"',
    "output_base64sha512": '"' + base64.b64encode(bytes(64)).decode() + '"',
}


class StubError(Exception):
    pass


# ---------------------------------------------------------------------------------------------------
# A small HCL scanner: enough to find the end of a block and the code outside strings and comments.
# ---------------------------------------------------------------------------------------------------
def char_kinds(text: str) -> list[str]:
    """For each character: "c" code, "s" string literal or heredoc, "#" comment. Template
    interpolations inside strings (${ ... }) count as code."""
    mask = ["c"] * len(text)
    i, n = 0, len(text)
    stack: list[str] = []  # "string" | "interp" (brace depth tracked with "brace" entries)
    while i < n:
        c = text[i]
        top = stack[-1] if stack else None
        if top == "string":
            mask[i] = "s"
            if c == "\\":
                if i + 1 < n:
                    mask[i + 1] = "s"
                i += 2
                continue
            if text.startswith("${", i) or text.startswith("%{", i):
                stack.append("interp")
                i += 2
                continue
            if c == '"':
                stack.pop()
            i += 1
            continue
        # code (top level or inside an interpolation)
        if c == '"':
            mask[i] = "s"
            stack.append("string")
        elif c == "#" or text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                mask[k] = "#"
            i = j
            continue
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                mask[k] = "#"
            i = j
            continue
        elif text.startswith("<<", i) and re.match(r"<<-?([A-Za-z_][\w-]*)\n", text[i:]):
            m = re.match(r"<<-?([A-Za-z_][\w-]*)\n", text[i:])
            end = re.compile(r"^[ \t]*" + re.escape(m.group(1)) + r"[ \t]*$", re.M).search(text, i + m.end())
            j = n if end is None else end.end()
            for k in range(i, j):
                mask[k] = "s"
            i = j
            continue
        elif c == "{":
            stack.append("brace")
        elif c == "}":
            if top == "brace":
                stack.pop()
            elif top == "interp":
                stack.pop()  # back into the string
        i += 1
    return mask


def code_mask(text: str) -> list[bool]:
    """For each character: True if it is code (not inside a string literal, heredoc or comment)."""
    return [k == "c" for k in char_kinds(text)]


def matching_brace(text: str, mask: list[bool], open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        if not mask[i]:
            continue
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise StubError(f"unbalanced braces from offset {open_at}")


def bracket_depth(text: str) -> int:
    mask = code_mask(text)
    depth = 0
    for i, c in enumerate(text):
        if mask[i]:
            depth += (c in "([{") - (c in ")]}")
    return depth


# ---------------------------------------------------------------------------------------------------
# The archive_file stub
# ---------------------------------------------------------------------------------------------------
DATA_ARCHIVE_FILE = re.compile(r'^[ \t]*data[ \t]+"archive_file"[ \t]+"([A-Za-z_][\w-]*)"[ \t]*\{', re.M)
ATTRIBUTE = re.compile(r"^[ \t]*([A-Za-z_][\w-]*)[ \t]*=(?!=)")
NESTED_BLOCK = re.compile(r'^[ \t]*([A-Za-z_][\w-]*)[ \t]*("[^"]*"[ \t]*)*\{')


def block_attributes(body: str, where: str) -> dict[str, str]:
    """Top-level `name = expression` items of a block body (expressions verbatim, comments dropped)."""
    attrs: dict[str, str] = {}
    lines = body.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        code = line.strip()
        if not code or code.startswith("#") or code.startswith("//"):
            i += 1
            continue
        m = ATTRIBUTE.match(line)
        if m:
            expr_lines = [line[m.end():]]
            while bracket_depth("\n".join(expr_lines)) > 0 and i + 1 < len(lines):
                i += 1
                expr_lines.append(lines[i])
            expr = "\n".join(expr_lines)
            # drop a trailing comment of the last line (outside strings)
            kinds = char_kinds(expr)
            last_code = max((k for k, kind in enumerate(kinds) if kind != "#" and not expr[k].isspace()), default=-1)
            attrs[m.group(1)] = expr[: last_code + 1].strip() if last_code >= 0 else expr.strip()
            i += 1
            continue
        b = NESTED_BLOCK.match(line)
        if b:
            raise StubError(f"{where}: nested block `{b.group(1)}` is not supported by the stub "
                            "(extend scripts/infra/tf_validate.py)")
        raise StubError(f"{where}: cannot read line {line.strip()!r}")
    return attrs


def stub_archive_files(module_dir: Path, rel_dir: str) -> list[str]:
    """Replace the archive_file data sources of one module directory of the copy. Returns notes."""
    notes: list[str] = []
    names: list[str] = []
    for tf in sorted(module_dir.glob("*.tf")):
        text = tf.read_text()
        changed = False
        while True:
            mask = code_mask(text)
            m = next((m for m in DATA_ARCHIVE_FILE.finditer(text) if mask[text.index("data", m.start())]), None)
            if m is None:
                break
            name = m.group(1)
            where = os.path.normpath(f"{TF_DIR}/{rel_dir}/{tf.name}")
            open_at = m.end() - 1
            close_at = matching_brace(text, mask, open_at)
            body = text[open_at + 1:close_at]
            attrs = block_attributes(body, f"{where}: data.archive_file.{name}")
            for meta in ("depends_on", "provider", "lifecycle"):
                if meta in attrs:
                    raise StubError(f"{where}: data.archive_file.{name}: `{meta}` is not supported by the stub")
            for key in attrs:
                if key not in ARCHIVE_FILE_ARGUMENTS + ["for_each", "count"]:
                    raise StubError(f"{where}: data.archive_file.{name}: `{key}` is not an argument of "
                                    "archive_file (or not supported by the stub)")
            for required in ("type", "output_path"):
                if required not in attrs:
                    raise StubError(f"{where}: data.archive_file.{name}: the required argument "
                                    f"`{required}` is missing")

            def subst(expr: str) -> str:
                expr = re.sub(r"\beach\.key\b", "stub_key", expr)
                expr = re.sub(r"\beach\.value\b", "stub_value", expr)
                return re.sub(r"\bcount\.index\b", "stub_index", expr)

            fields = [f"{arg} = {subst(attrs[arg]) if arg in attrs else 'null'}" for arg in ARCHIVE_FILE_ARGUMENTS]
            fields += ["source = []"]
            fields += [f"{attr} = {value}" for attr, value in ARCHIVE_FILE_COMPUTED.items()]
            obj = "{\n" + "".join(f"      {f}\n" for f in fields) + "    }"
            if "for_each" in attrs:
                # tomap/tolist: one element type, so that `[each.key].no_such_attribute` fails as it does on
                # the real data source (indexing an object-typed value with an unknown key is not checked).
                value = f"tomap({{\n    for stub_key, stub_value in ({attrs['for_each']}) : stub_key => {obj}\n  }})"
            elif "count" in attrs:
                value = f"tolist([\n    for stub_index in range({attrs['count']}) : {obj}\n  ])"
            else:
                value = obj.replace("\n    }", "\n  }").replace("\n      ", "\n    ")
            stub = (
                f"\n# check-infra `terraform validate` stub of data.archive_file.{name} (lines "
                f"{text.count(chr(10), 0, m.start()) + 1}-{text.count(chr(10), 0, close_at) + 1}): "
                "the archive provider is not on this machine.\n"
                f"locals {{\n  stub_archive_file_{name} = {value}\n}}\n"
            )
            original = text[m.start():close_at + 1]
            blanked = "\n".join("# (stubbed) " + line for line in original.split("\n"))
            text = text[:m.start()] + blanked + text[close_at + 1:]
            if not text.endswith("\n"):
                text += "\n"
            text += stub
            changed = True
            names.append(name)
            notes.append(f"note stubbed: data.archive_file.{name} in {where} (archive provider not on this "
                         f"machine): a local with its instance keys and attributes, arguments as written")
        if changed:
            tf.write_text(text)
    if names:
        for tf in sorted(module_dir.glob("*.tf")):
            text = tf.read_text()
            new = text
            for name in names:
                mask = code_mask(new)
                new = re.sub(rf"\bdata\.archive_file\.{re.escape(name)}\b",
                             lambda m, name=name, mask=mask:
                             f"local.stub_archive_file_{name}" if mask[m.start()] else m.group(0), new)
            if new != text:
                tf.write_text(new)
    return notes


REQUIRED_PROVIDERS = re.compile(r"^[ \t]*required_providers[ \t]*\{", re.M)
ARCHIVE_REQUIREMENT = re.compile(r'^[ \t]*archive[ \t]*=[ \t]*\{', re.M)


def drop_archive_requirement(module_dir: Path, rel_dir: str) -> list[str]:
    notes = []
    for tf in sorted(module_dir.glob("*.tf")):
        text = tf.read_text()
        for rp in REQUIRED_PROVIDERS.finditer(text):
            mask = code_mask(text)
            if not mask[text.index("required_providers", rp.start())]:
                continue
            rp_end = matching_brace(text, mask, rp.end() - 1)
            a = ARCHIVE_REQUIREMENT.search(text, rp.end(), rp_end)
            if a is None:
                continue
            a_end = matching_brace(text, mask, a.end() - 1)
            removed = text[a.start():a_end + 1]
            text = text[:a.start()] + "\n".join("# (stubbed) " + line for line in removed.split("\n")) + \
                text[a_end + 1:]
            tf.write_text(text)
            where = os.path.normpath(f"{TF_DIR}/{rel_dir}/{tf.name}")
            notes.append(f"note stubbed: required_providers.archive removed from {where} (archive provider "
                         "not on this machine)")
            break
    return notes


LEFTOVER = re.compile(r'data\s+"archive_file"|\bdata\.archive_file\.|hashicorp/archive|\barchive_[a-z_]+\s*"')


def leftovers(module_dir: Path) -> list[str]:
    """Uses of the archive provider left in the copy, outside comments."""
    found = []
    for tf in sorted(module_dir.glob("*.tf")):
        text = tf.read_text()
        kinds = char_kinds(text)
        for m in LEFTOVER.finditer(text):
            if kinds[m.start()] != "#":
                found.append(f"{tf.name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}")
    return found


# ---------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------
def module_dirs(tf_root: Path) -> list[str]:
    dirs = set()
    for tf in tf_root.rglob("*.tf"):
        rel = tf.parent.relative_to(tf_root)
        if any(part in (".terraform", "node_modules", "build") for part in rel.parts):
            continue
        dirs.add(rel.as_posix())
    return sorted(dirs, key=lambda d: (d != ".", d))


def terraform(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1", TF_INPUT="0")
    env.pop("TF_DATA_DIR", None)
    env.pop("TF_PLUGIN_CACHE_DIR", None)
    if env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).is_file():
        env["TF_CLI_CONFIG_FILE"] = "/dev/null"
    if not env.get("TF_CLI_CONFIG_FILE") and not (Path.home() / ".terraformrc").is_file():
        env["TF_CLI_CONFIG_FILE"] = "/dev/null"
    return subprocess.run(["terraform", *args], cwd=cwd, env=env, capture_output=True, text=True)


def format_diagnostic(d: dict, rel_dir: str) -> str:
    rng = d.get("range") or {}
    loc = ""
    if rng.get("filename"):
        path = os.path.normpath(f"{TF_DIR}/{rel_dir}/{rng['filename']}")
        loc = f"{path}:{rng.get('start', {}).get('line', '?')}: "
    detail = " ".join((d.get("detail") or "").split())
    snippet = d.get("snippet") or {}
    code = f"\n        {snippet['code'].strip()}" if snippet.get("code") else ""
    return f"  {loc}{d.get('severity', '?')}: {d.get('summary', '')}" + (f": {detail}" if detail else "") + code


def validate(copy_root: Path, rel_dir: str, plugin_dir: str) -> tuple[bool, list[str], float]:
    start = time.monotonic()
    cwd = copy_root / rel_dir
    out: list[str] = []
    init = terraform(["init", "-backend=false", f"-plugin-dir={plugin_dir}", "-input=false", "-no-color"], cwd)
    if init.returncode != 0:
        out.append(f"  terraform init failed:\n{(init.stdout + init.stderr).strip()}")
        return False, out, time.monotonic() - start
    val = terraform(["validate", "-json", "-no-color"], cwd)
    try:
        result = json.loads(val.stdout)
    except json.JSONDecodeError:
        out.append(f"  terraform validate: unreadable output (exit {val.returncode}):\n{val.stdout}{val.stderr}")
        return False, out, time.monotonic() - start
    diags = result.get("diagnostics") or []
    out.extend(format_diagnostic(d, rel_dir) for d in diags)
    ok = bool(result.get("valid")) and val.returncode == 0 and not diags
    return ok, out, time.monotonic() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True, type=Path)
    ap.add_argument("--source", type=Path, help="the infra/terraform to copy (default: REPO/infra/terraform)")
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--work", required=True, type=Path, help="scratch directory (created; must not exist)")
    ap.add_argument("--only", default="", help="comma-separated module directories relative to infra/terraform")
    ap.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    args = ap.parse_args()

    repo = args.repo.resolve()
    work = args.work
    work.mkdir(parents=True)
    work = work.resolve()
    # The repository next to the copy, read-only through symlinks; infra/terraform itself is copied.
    for entry in repo.iterdir():
        if entry.name != "infra":
            (work / entry.name).symlink_to(entry)
    (work / "infra").mkdir()
    for entry in (repo / "infra").iterdir():
        if entry.name != "terraform":
            (work / "infra" / entry.name).symlink_to(entry)
    copy_root = work / TF_DIR
    shutil.copytree(args.source or repo / TF_DIR, copy_root, ignore=COPY_IGNORE, symlinks=True)

    dirs = module_dirs(copy_root)
    only = [os.path.normpath(d) for d in args.only.split(",") if d]
    for d in only:
        if d not in dirs:
            print(f"--only {d}: no .tf files in {TF_DIR}/{d}")
            return 1
    for d in dirs:
        if d in NOT_VALIDATED and not only:
            print(f"note not validated: {TF_DIR}/{d} ({NOT_VALIDATED[d]})")
    targets = [d for d in (only or dirs) if d not in NOT_VALIDATED]

    # Stubs, in every directory of the copy (a validated root reads its modules from the copy too).
    notes: list[str] = []
    try:
        for d in dirs:
            if d in NOT_VALIDATED:
                continue
            notes += stub_archive_files(copy_root / d, d)
        for d in dirs:
            if d not in NOT_VALIDATED:
                notes += drop_archive_requirement(copy_root / d, d)
        for d in dirs:
            if d in NOT_VALIDATED:
                continue
            left = leftovers(copy_root / d)
            if left:
                raise StubError(f"{TF_DIR}/{d}: archive provider use the stub does not cover: {', '.join(left)}")
    except StubError as e:
        print(f"stub: {e}")
        return 1
    for n in notes:
        print(n)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda d: (d, *validate(copy_root, d, args.plugin_dir)), targets))
    failed = 0
    for d, ok, out, secs in results:
        name = os.path.normpath(f"{TF_DIR}/{d}")
        print(f"{'valid' if ok else 'INVALID'}  {name} ({secs:.1f}s)")
        for line in out:
            print(line)
        failed += not ok
    print(f"terraform validate: {len(results) - failed} of {len(results)} module directories valid"
          f"{' (with the stubs above)' if notes else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
