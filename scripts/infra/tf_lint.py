#!/usr/bin/env python3
"""Offline HCL checks for infra/terraform (no providers needed, unlike `terraform validate`).

1. Every .tf file parses (python-hcl2).
2. Within each module directory, every reference resolves: var.X is declared, local.X is defined,
   module.X exists and module.X.Y is an output of that module, resource and data references name
   declared blocks. A `moved` block's `to` must resolve too; its `from` names an address that is no
   longer declared, and is not checked.
3. Every module call passes only declared variables and every variable without a default.
4. No declared variable is unused.

Usage: tf_lint.py [TERRAFORM_DIR]   (default infra/terraform). Exit 1 on any problem.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import hcl2

IGNORED_ROOTS = {"each", "count", "path", "self", "terraform"}
REF_VAR = re.compile(r"\bvar\.([A-Za-z_][\w-]*)")
REF_LOCAL = re.compile(r"\blocal\.([A-Za-z_][\w-]*)")
REF_MODULE = re.compile(r"\bmodule\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?(?:\.([A-Za-z_][\w-]*))?")
REF_DATA = re.compile(r"\bdata\.([a-z][a-z0-9_]*)\.([A-Za-z_][\w-]*)")
REF_RESOURCE = re.compile(r"(?<![\w.])((?:aws|archive|random|null|kafka|grafana)_[a-z0-9_]+)\.([A-Za-z_][\w-]*)")


def unq(value):
    """python-hcl2 keeps the quotes of string literals and block labels."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def meta(key) -> bool:
    """python-hcl2 >= 7 adds metadata keys such as __is_block__ and __comments__."""
    return isinstance(key, str) and key.startswith("__") and key.endswith("__")


def strip_meta(node):
    if isinstance(node, dict):
        return {k: strip_meta(v) for k, v in node.items() if not meta(k)}
    if isinstance(node, list):
        return [strip_meta(v) for v in node]
    return node


def strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


class Module:
    def __init__(self, directory: Path):
        self.dir = directory
        self.files = sorted(directory.glob("*.tf"))
        self.docs = {}
        self.variables: dict[str, dict] = {}
        self.locals: set[str] = set()
        self.outputs: set[str] = set()
        self.resources: set[tuple[str, str]] = set()
        self.data: set[tuple[str, str]] = set()
        self.modules: dict[str, dict] = {}

    def parse(self, errors: list[str]) -> None:
        for f in self.files:
            try:
                with f.open() as fh:
                    self.docs[f] = strip_meta(hcl2.load(fh))
            except Exception as exc:  # noqa: BLE001 - report any parser error
                errors.append(f"{f}: does not parse: {exc}")
        for doc in self.docs.values():
            for block in doc.get("variable", []):
                for name, body in block.items():
                    self.variables[unq(name)] = body
            for block in doc.get("locals", []):
                self.locals.update(unq(k) for k in block)
            for block in doc.get("output", []):
                self.outputs.update(unq(k) for k in block)
            for block in doc.get("resource", []):
                for rtype, named in block.items():
                    for rname in named:
                        self.resources.add((unq(rtype), unq(rname)))
            for block in doc.get("data", []):
                for dtype, named in block.items():
                    for dname in named:
                        self.data.add((unq(dtype), unq(dname)))
            for block in doc.get("module", []):
                for name, body in block.items():
                    self.modules[unq(name)] = body


def lint_module(mod: Module, cache: dict[Path, Module], errors: list[str]) -> None:
    used_vars: set[str] = set()
    for f, doc in mod.docs.items():
        rel = os.path.relpath(f)
        refs = {k: v for k, v in doc.items() if k != "moved"}
        refs["moved"] = [{"to": m.get("to")} for m in doc.get("moved", [])]
        for s in strings(refs):
            for m in REF_VAR.finditer(s):
                used_vars.add(m.group(1))
                if m.group(1) not in mod.variables:
                    errors.append(f"{rel}: var.{m.group(1)} is not declared")
            for m in REF_LOCAL.finditer(s):
                if m.group(1) not in mod.locals:
                    errors.append(f"{rel}: local.{m.group(1)} is not defined")
            for m in REF_MODULE.finditer(s):
                name, out = m.group(1), m.group(2)
                if name not in mod.modules:
                    errors.append(f"{rel}: module.{name} is not declared")
                    continue
                child = child_module(mod, name, cache)
                if child is not None and out and out not in child.outputs:
                    errors.append(f"{rel}: module.{name}.{out} is not an output of {child.dir}")
            data_spans = []
            for m in REF_DATA.finditer(s):
                data_spans.append(m.span())
                if (m.group(1), m.group(2)) not in mod.data:
                    errors.append(f"{rel}: data.{m.group(1)}.{m.group(2)} is not declared")
            for m in REF_RESOURCE.finditer(s):
                if any(a <= m.start() < b for a, b in data_spans):
                    continue
                if (m.group(1), m.group(2)) not in mod.resources:
                    errors.append(f"{rel}: {m.group(1)}.{m.group(2)} is not declared")

    for name in sorted(set(mod.variables) - used_vars):
        errors.append(f"{mod.dir}: variable {name} is declared but never used")

    for name, body in mod.modules.items():
        child = child_module(mod, name, cache)
        if child is None:
            errors.append(f"{mod.dir}: module {name}: source {unq(body.get('source'))} not found")
            continue
        passed = {k for k in body if k not in {"source", "version", "for_each", "count", "depends_on", "providers"}}
        for k in sorted(passed - set(child.variables)):
            errors.append(f"{mod.dir}: module {name} passes {k}, which {child.dir} does not declare")
        required = {k for k, v in child.variables.items() if "default" not in v}
        for k in sorted(required - passed):
            errors.append(f"{mod.dir}: module {name} does not pass required variable {k}")


def child_module(mod: Module, name: str, cache: dict[Path, Module]) -> Module | None:
    source = unq(mod.modules[name].get("source", ""))
    if not isinstance(source, str) or not source.startswith("."):
        return None
    path = (mod.dir / source).resolve()
    if not path.is_dir():
        return None
    return cache.get(path)


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "infra/terraform").resolve()
    dirs = sorted({f.parent for f in root.rglob("*.tf") if ".terraform" not in f.parts})
    errors: list[str] = []
    cache: dict[Path, Module] = {}
    n_files = 0
    for d in dirs:
        mod = Module(d)
        mod.parse(errors)
        n_files += len(mod.files)
        cache[d.resolve()] = mod
    for mod in cache.values():
        lint_module(mod, cache, errors)
    for e in errors:
        print(f"tf_lint: {e}")
    print(f"tf_lint: {n_files} files in {len(dirs)} modules parsed, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
