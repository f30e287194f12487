#!/usr/bin/env python3
"""Which environment variables the Rust code reads, found by reading the Rust sources.

Used by consistency.py to check the names docker-compose, the ECS task definitions, the Dockerfile and
Terraform set against what each service actually reads. Nothing is compiled; the sources are scanned:

* `crates/observability/src/settings.rs`, `impl Env`: which methods read a variable (they call
  `std::env::var` or another reading method), which of them take a default, and how `var_name` builds the
  full name from the prefix (`format!("{}_{name}", self.prefix)` -> `<PREFIX>_<NAME>`);
* every call of such a method with a string literal (`env.string("VAULT_URL", ..)`, `env.secret(..)`,
  `env.parse(..)`, `env.seconds(..)`, `env.raw(..)`), and of helper functions and closures that pass
  their `name: &str` parameter on to one (`base_url(&env, "VAULT_URL", ..)`, `positive("X", 1)`,
  `addr("PUBLIC_ADDR", port)`);
* the prefix: `Env::new(ENV_PREFIX)` with `const ENV_PREFIX: &str = "VAULT"` (or a literal);
* reads through an `&Env` parameter in crates/observability (`CommonSettings::from_env`, `healthcheck`)
  are the common settings of every service that calls `CommonSettings::from_env`;
* unprefixed reads: `std::env::var("X")` / `var_os("X")` literals, tracing-subscriber's
  `EnvFilter::from_default_env` (`RUST_LOG`), the OpenTelemetry SDK's `OTEL_*` variables (from the
  locked crates' sources in the Cargo registry when present), and clap's `#[arg(env = "X")]`;
* start-up refusals: `return Err(SettingsError { variable: env.var_name("X"), problem: ..required.. })`
  inside `if <cond>` makes X required when `<cond>`'s string literals (values of `<P>_ENV`) match, or
  always when it names none; a `Some(_) if <..> == "production" => return Err(..var_name("X")..)` arm
  makes X refused in those environments.

`#[cfg(test)]` modules and comments are ignored.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

NAME_LIT = r'"([A-Z][A-Z0-9_]*)"'
ALWAYS = "*"

# Used only when the locked opentelemetry crates' sources are not in the Cargo registry (no build has
# run on this machine): the OpenTelemetry SDK and OTLP exporter read these standard variables inside the
# dependencies, so the workspace's own sources cannot show them. With the sources present the full list
# is read from them instead (and this one is not used).
OTEL_FALLBACK = {
    "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_EXPORT_TIMEOUT",
}


@dataclass
class EnvRead:
    name: str                      # full variable name
    default: bool                  # the code falls back to a default (or to nothing) when it is unset
    where: str                     # file:line of the first read
    default_value: str | None = None            # the literal default, when there is one
    required_in: set = field(default_factory=set)   # <P>_ENV values that make it required (ALWAYS = any)
    refused_in: set = field(default_factory=set)    # <P>_ENV values in which setting it stops the start

    def required(self, envs: set) -> bool:
        return ALWAYS in self.required_in or bool(self.required_in & envs)

    def refused(self, envs: set) -> bool:
        return ALWAYS in self.refused_in or bool(self.refused_in & envs)


@dataclass
class Component:
    name: str
    prefix: str | None
    reads: dict = field(default_factory=dict)   # full name -> EnvRead
    sources: list = field(default_factory=list)  # where the reads came from (for messages)

    def add(self, read: EnvRead) -> None:
        old = self.reads.get(read.name)
        if old is None:
            self.reads[read.name] = read
        else:
            old.default = old.default and read.default
            old.required_in |= read.required_in
            old.refused_in |= read.refused_in
            if old.default_value is None:
                old.default_value = read.default_value


# -------------------------------------------------------------------------------------------------
# Rust text helpers
# -------------------------------------------------------------------------------------------------
def strip_comments(text: str) -> str:
    """Blank out // and /* */ comments, keep strings, char literals and line numbers."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append(text[i:end])
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12])
            if m:
                out.append(m.group(0))
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching(text: str, open_at: int) -> int:
    """Index just past the bracket closing the one at open_at (strings skipped)."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = []
    i, n = open_at, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in pairs:
            stack.append(pairs[c])
        elif c in ")]}":
            if stack and stack[-1] == c:
                stack.pop()
                if not stack:
                    return i + 1
        i += 1
    return n


def blank_test_modules(text: str) -> str:
    for m in reversed(list(re.finditer(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s+\w+\s*\{", text))):
        end = matching(text, m.end() - 1)
        text = text[:m.start()] + re.sub(r"[^\n]", " ", text[m.start():end]) + text[end:]
    return text


def source(path: Path) -> str:
    return blank_test_modules(strip_comments(path.read_text(errors="replace")))


def split_args(args: str) -> list[str]:
    """Top-level comma split of a call's argument text."""
    out, depth, cur, i = [], 0, [], 0
    while i < len(args):
        c = args[i]
        if c == '"':
            j = i + 1
            while j < len(args) and args[j] != '"':
                j += 2 if args[j] == "\\" else 1
            cur.append(args[i:j + 1])
            i = j + 1
            continue
        if c in "([{<" and not (c == "<" and i and args[i - 1] == " "):
            depth += 1
        elif c in ")]}>" and depth and not (c == ">" and i and args[i - 1] in "-="):
            depth -= 1
        if c == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


# -------------------------------------------------------------------------------------------------
# Env semantics (crates/observability/src/settings.rs)
# -------------------------------------------------------------------------------------------------
@dataclass
class EnvApi:
    readers: dict          # method -> takes a default (bool)
    separator: str         # between prefix and name
    where: str


def env_api(repo: Path) -> EnvApi:
    rel = "crates/observability/src/settings.rs"
    text = source(repo / rel)
    m = re.search(r"impl\s+Env\s*\{", text)
    assert m, f"{rel}: no `impl Env` block"
    body = text[m.end() - 1:matching(text, m.end() - 1)]
    methods = {}
    for fm in re.finditer(r"pub\s+fn\s+(\w+)\s*(?:<[^>]*>)?\s*\(", body):
        close = matching(body, fm.end() - 1)
        params = split_args(body[fm.end():close - 1])
        brace = body.find("{", close)
        methods[fm.group(1)] = (params, body[brace:matching(body, brace)])
    vn = methods.get("var_name")
    assert vn, f"{rel}: Env has no var_name (how the full name is built)"
    fmt = re.search(r'format!\(\s*"\{\}([^"{]*)\{name\}"\s*,\s*self\.prefix\s*\)', vn[1]) or \
        re.search(r'format!\(\s*"\{prefix\}([^"{]*)\{name\}"', vn[1].replace("self.prefix", "prefix"))
    assert fmt, f"{rel}: Env::var_name no longer builds `{{prefix}}<sep>{{name}}`; teach scripts/infra/rust_env.py the new form"
    readers: dict[str, bool] = {}
    changed = True
    while changed:
        changed = False
        for name, (params, fbody) in methods.items():
            if name in readers or not params or params[0].replace(" ", "") != "&self":
                continue
            if len(params) < 2 or not re.match(r"name\s*:\s*&str$", params[1]):
                continue
            direct = re.search(r"std::env::var(?:_os)?\(\s*self\.var_name\(\s*name\s*\)", fbody)
            via = [r for r in readers if re.search(rf"self\.{r}\(\s*name\b", fbody)]
            if direct or via:
                has_default = any(p.split(":")[0].strip() == "default" for p in params[2:])
                readers[name] = has_default or any(readers[r] for r in via)
                changed = True
    assert {"raw", "string"} <= set(readers), f"{rel}: Env readers not recognised ({sorted(readers)})"
    return EnvApi(readers, fmt.group(1), rel)


# -------------------------------------------------------------------------------------------------
# Reads in one file
# -------------------------------------------------------------------------------------------------
def _env_receivers(text: str) -> set:
    recv = set(re.findall(r"let\s+(?:mut\s+)?(\w+)\s*(?::\s*Env\s*)?=\s*(?:casino_observability::settings::)?Env::new\(", text))
    recv |= set(re.findall(r"\b(\w+)\s*:\s*&\s*Env\b", text))
    return recv


def _helpers(text: str, api: EnvApi, recv: set) -> dict:
    """fn/closure name -> (index of its name parameter, takes a default)."""
    helpers: dict[str, tuple[int, bool]] = {}
    changed = True
    while changed:
        changed = False
        cands = []
        for m in re.finditer(r"\bfn\s+(\w+)\s*(?:<[^>]*>)?\s*\(", text):
            close = matching(text, m.end() - 1)
            brace = text.find("{", close)
            cands.append((m.group(1), split_args(text[m.end():close - 1]), text[brace:matching(text, brace)]))
        for m in re.finditer(r"\blet\s+(\w+)\s*=\s*(?:move\s*)?\|([^|]*)\|", text):
            rest = text[m.end():]
            body_start = m.end() + (len(rest) - len(rest.lstrip()))
            if text[body_start:body_start + 2] == "->":
                brace = text.find("{", body_start)
                end = matching(text, brace)
            elif text[body_start] == "{":
                end = matching(text, body_start)
            else:
                end = text.find(";", body_start)
            cands.append((m.group(1), split_args(m.group(2)), text[body_start:end]))
        for name, params, body in cands:
            if name in helpers or name in api.readers:
                continue
            for idx, p in enumerate(params):
                pm = re.match(r"(\w+)\s*:\s*&(?:'\w+\s+)?str$", p)
                if not pm:
                    continue
                pname = pm.group(1)
                via_reader = [r for r in api.readers
                              if re.search(rf"\b(?:{'|'.join(map(re.escape, recv)) or 'env'})\.{r}\(\s*{pname}\b", body)]
                via_helper = [h for h, (hidx, _) in helpers.items() if _call_arg(body, h, hidx) == pname]
                if via_reader or via_helper:
                    default = any(api.readers[r] for r in via_reader) or any(helpers[h][1] for h in via_helper)
                    helpers[name] = (idx, default)
                    changed = True
                    break
    return helpers


def _call_arg(body: str, fn: str, idx: int):
    for m in re.finditer(rf"(?<![\w.]){re.escape(fn)}\(", body):
        args = split_args(body[m.end():matching(body, m.end() - 1) - 1])
        if idx < len(args):
            return args[idx]
    return None


def _default_literal(args: list[str]):
    if len(args) >= 2:
        m = re.fullmatch(r'"([^"]*)"(?:\.into\(\)|\.to_owned\(\)|\.to_string\(\))?', args[1])
        if m:
            return m.group(1)
        if re.fullmatch(r"[\d_.]+", args[1]):
            return args[1].replace("_", "")
    return None


def prefixed_reads(text: str, api: EnvApi, rel: str) -> list[tuple[str, bool, str, str | None, str]]:
    """(NAME without prefix, has default, file:line, literal default, receiver) for every read in text."""
    recv = _env_receivers(text)
    if not recv:
        return []
    out = []
    recv_re = "|".join(map(re.escape, sorted(recv)))
    for m in re.finditer(rf"\b({recv_re})\s*\.\s*(\w+)\(", text):
        method = m.group(2)
        if method not in api.readers:
            continue
        args = split_args(text[m.end():matching(text, m.end() - 1) - 1])
        lit = re.fullmatch(NAME_LIT, args[0]) if args else None
        if lit:
            out.append((lit.group(1), api.readers[method], f"{rel}:{line_of(text, m.start())}",
                        _default_literal(args) if api.readers[method] else None, m.group(1)))
    for fn, (idx, default) in _helpers(text, api, recv).items():
        for m in re.finditer(rf"(?<![\w.]){re.escape(fn)}\(", text):
            args = split_args(text[m.end():matching(text, m.end() - 1) - 1])
            lit = re.fullmatch(NAME_LIT, args[idx]) if idx < len(args) else None
            if lit:
                out.append((lit.group(1), default, f"{rel}:{line_of(text, m.start())}", None, "helper"))
    return out


def refusals(text: str) -> list[tuple[str, str, set]]:
    """(NAME, 'required'|'refused', env values or {ALWAYS}) from start-up errors naming a variable."""
    out = []
    for m in re.finditer(r"SettingsError\s*\{\s*variable\s*:\s*\w+\s*\.\s*var_name\(\s*" + NAME_LIT + r"\s*\)\s*,\s*problem\s*:", text):
        name = m.group(1)
        close = matching(text, text.rfind("{", 0, m.start() + len("SettingsError") + 2))
        problem = text[m.end():close]
        before = text[:m.start()]
        arm = re.search(r"Some\(\s*_\s*\)\s*if\s+([^=]+?==\s*\"[\w-]+\"[^=]*?)=>\s*\{\s*return\s+Err\(\s*$", before)
        if arm:
            out.append((name, "refused", set(re.findall(r'"([\w-]+)"', arm.group(1))) or {ALWAYS}))
            continue
        if "required" not in problem:
            continue
        # The condition of the innermost `if` this error sits in.
        conds = [c for c in re.finditer(r"\bif\s+((?:(?!\bif\b)[^{;])+)\{\s*return\s+Err\(\s*$", before, re.S)]
        envs = set(re.findall(r'"([\w-]+)"', conds[-1].group(1))) if conds else set()
        out.append((name, "required", envs or {ALWAYS}))
    return out


def unprefixed_reads(text: str, rel: str, consts: dict | None = None) -> list[tuple[str, str]]:
    """`std::env::var("X")` / `var_os("X")`, or with a `&str` constant (`var(crate::m::X_VARIABLE)`).
    `option_env!`/`env!` are compile-time and not counted."""
    out = []
    for m in re.finditer(r"\benv::var(?:_os)?\(\s*(?:" + NAME_LIT + r"|((?:\w+::)*[A-Z_][A-Z0-9_]*))\s*\)", text):
        name = m.group(1) or (consts or {}).get(m.group(2).split("::")[-1])
        if name:
            out.append((name, f"{rel}:{line_of(text, m.start())}"))
    return out


def clap_env_reads(text: str, rel: str) -> list[tuple[str, bool, str]]:
    out = []
    for m in re.finditer(r"#\[arg\(([^\]]*)\)\]\s*(?:pub\s+)?(\w+)\s*:\s*([^,\n]+)", text):
        env = re.search(r"\benv\s*=\s*" + NAME_LIT, m.group(1))
        if env:
            optional = m.group(3).strip().startswith("Option<") or "default_value" in m.group(1)
            out.append((env.group(1), optional, f"{rel}:{line_of(text, m.start())}"))
    return out


# -------------------------------------------------------------------------------------------------
# Dependencies read by the shared telemetry
# -------------------------------------------------------------------------------------------------
def locked_versions(repo: Path, prefix: str) -> dict:
    lock = repo / "Cargo.lock"
    if not lock.exists():
        return {}
    out = {}
    for m in re.finditer(r'\[\[package\]\]\s*name\s*=\s*"([^"]+)"\s*version\s*=\s*"([^"]+)"', lock.read_text()):
        if m.group(1).startswith(prefix):
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def registry_dirs(repo: Path, crate: str, versions: list[str]) -> list[Path]:
    home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    dirs = []
    for v in versions:
        dirs += sorted(p for p in (home / "registry" / "src").glob(f"*/{crate}-{v}") if p.is_dir())
    vendor = repo / "vendor"
    for v in versions:
        for cand in (vendor / f"{crate}-{v}", vendor / crate):
            if cand.is_dir():
                dirs.append(cand)
    return dirs


def otel_sdk_names(repo: Path) -> tuple[set, str]:
    names, seen = set(), []
    for crate, versions in sorted(locked_versions(repo, "opentelemetry").items()):
        for d in registry_dirs(repo, crate, versions):
            seen.append(d.name)
            for f in d.rglob("*.rs"):
                names |= set(re.findall(r'"(OTEL_[A-Z0-9_]+)"', f.read_text(errors="replace")))
    if names:
        return names, "sources of " + ", ".join(sorted(set(seen)))
    return set(OTEL_FALLBACK), "fallback list in scripts/infra/rust_env.py (locked opentelemetry sources not in the Cargo registry)"


def tracing_default_env(repo: Path) -> str:
    for crate, versions in locked_versions(repo, "tracing-subscriber").items():
        for d in registry_dirs(repo, crate, versions):
            for f in d.rglob("*.rs"):
                m = re.search(r'pub\s+const\s+DEFAULT_ENV\s*:\s*&str\s*=\s*"([A-Z_]+)"', f.read_text(errors="replace"))
                if m:
                    return m.group(1)
    return "RUST_LOG"  # tracing-subscriber's EnvFilter::DEFAULT_ENV, when its source is not at hand


# -------------------------------------------------------------------------------------------------
# Whole workspace
# -------------------------------------------------------------------------------------------------
def rs_files(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*.rs") if "target" not in p.parts and "tests" not in p.relative_to(d).parts[:1]
                  and "benches" not in p.relative_to(d).parts[:1]) if d.is_dir() else []


def workspace_env(repo: Path, services: dict) -> dict:
    """services: component name -> dict(kind='service', dir=Path) or dict(kind='clap', file=Path).

    Returns {'api': EnvApi, 'components': {name: Component}, 'notes': [...]}."""
    api = env_api(repo)
    notes = []
    obs_dir = repo / "crates/observability/src"
    # Common settings and process-wide reads of crates/observability (not its test fixture binaries).
    common, process, obs_refusals = [], [], []
    uses_env_filter = False
    for f in rs_files(obs_dir):
        if "bin" in f.relative_to(obs_dir).parts:
            continue
        rel = f.relative_to(repo).as_posix()
        text = source(f)
        params = set(re.findall(r"\b(\w+)\s*:\s*&\s*Env\b", text))
        common += [r for r in prefixed_reads(text, api, rel) if r[4] in params or r[4] == "helper"]
        obs_refusals += refusals(text)
        process += unprefixed_reads(text, rel)
        uses_env_filter |= bool(re.search(r"EnvFilter::(?:try_)?from_default_env", text))
    otel, otel_source = otel_sdk_names(repo)
    uses_otlp = any("opentelemetry_otlp" in source(f) for f in rs_files(obs_dir))
    components = {}
    for name, spec in services.items():
        comp = Component(name, None)
        if spec["kind"] == "service":
            files = rs_files(spec["dir"])
            texts = {f: source(f) for f in files}
            consts = {}
            for t in texts.values():
                consts.update(dict(re.findall(r'const\s+([A-Z_][A-Z0-9_]*)\s*:\s*&(?:\'static\s+)?str\s*=\s*"([^"]*)"', t)))
            prefixes = set()
            for t in texts.values():
                for arg in re.findall(r"\bEnv::new\(\s*([^)]*?)\s*\)", t):
                    lit = re.fullmatch(r'"([^"]*)"', arg)
                    key = arg.split("::")[-1]
                    if lit:
                        prefixes.add(lit.group(1))
                    elif key in consts:
                        prefixes.add(consts[key])
                    else:
                        raise AssertionError(f"{name}: cannot resolve Env::new({arg})")
            assert len(prefixes) == 1, f"{name}: expected one Env prefix in {spec['dir']}, found {sorted(prefixes)}"
            comp.prefix = prefixes.pop()
            full = lambda n: comp.prefix + api.separator + n  # noqa: E731
            uses_common = any("CommonSettings::from_env" in t for t in texts.values())
            # The shared main (`casino_observability::service::main`) initialises logging and tracing.
            telemetry = any(re.search(r"\bservice::main\b|\binit_telemetry\(", t) for t in texts.values())
            if uses_common:
                for n, d, where, dv, _ in common:
                    comp.add(EnvRead(full(n), d, where, dv))
                for n, kind, envs in obs_refusals:
                    comp.add(EnvRead(full(n), True, api.where, **{f"{kind}_in": set(envs)}))
            for f, t in texts.items():
                rel = f.relative_to(repo).as_posix()
                for n, d, where, dv, _ in prefixed_reads(t, api, rel):
                    comp.add(EnvRead(full(n), d, where, dv))
                for n, kind, envs in refusals(t):
                    comp.add(EnvRead(full(n), True, rel, **{f"{kind}_in": set(envs)}))
                for n, where in unprefixed_reads(t, rel, consts):
                    comp.add(EnvRead(n, True, where))
            if telemetry:
                for n, where in process:
                    comp.add(EnvRead(n, True, where))
                if uses_env_filter:
                    comp.add(EnvRead(tracing_default_env(repo), True, "tracing-subscriber EnvFilter::from_default_env"))
                if uses_otlp:
                    for n in otel:
                        comp.add(EnvRead(n, True, otel_source))
            comp.sources = [spec["dir"].relative_to(repo).as_posix()]
        else:
            f = spec["file"]
            rel = f.relative_to(repo).as_posix()
            for n, optional, where in clap_env_reads(source(f), rel):
                comp.add(EnvRead(n, optional, where))
            comp.sources = [rel]
        components[name] = comp
    notes.append(f"OTEL_* names: {otel_source}")
    return {"api": api, "components": components, "notes": notes}


if __name__ == "__main__":  # debugging aid: print what was found
    import sys
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
    found = workspace_env(repo, {
        "vault": {"kind": "service", "dir": repo / "services/vault/src"},
        "concierge": {"kind": "service", "dir": repo / "services/concierge/src"},
        "room-service": {"kind": "service", "dir": repo / "services/room-service/src"},
        "chat-probe": {"kind": "clap", "file": repo / "tools/casino/src/probe.rs"},
    })
    for comp in found["components"].values():
        print(f"{comp.name} (prefix {comp.prefix}):")
        for r in sorted(comp.reads.values(), key=lambda r: r.name):
            if r.name.startswith("OTEL_"):
                continue
            extra = []
            if not r.default:
                extra.append("no default")
            if r.default_value is not None:
                extra.append(f"default {r.default_value!r}")
            if r.required_in:
                extra.append(f"required in {sorted(r.required_in)}")
            if r.refused_in:
                extra.append(f"refused in {sorted(r.refused_in)}")
            print(f"  {r.name:45} {r.where:45} {', '.join(extra)}")
    print("\n".join(found["notes"]))
