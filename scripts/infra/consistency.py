#!/usr/bin/env python3
"""Consistency of the deployment artifacts with each other and with the code.

Sources of truth, in this order:
  * the Rust code, where it exists: health paths in crates/observability/src/**/*.rs, topic constants
    (`pub const X: &str = "vault.transactions.v1";`) in crates/events/src/**/*.rs, and the environment
    variables each service (and the chat probe) reads, found by scanning its sources (scripts/infra/
    rust_env.py): a variable set for a container that its program does not read fails (a typo), and so
    does a variable the program refuses to start without (in the environment the artifact deploys to);
  * docs/conventions.md otherwise (and always for ports, binaries, databases, and for the settings a
    container must set because the code's defaults are for local runs), saying so.

Artifacts checked: docker-compose.yml and deploy/compose/*, deploy/ecs-task-defs/*.json and
adot-config.yaml, infra/terraform (parsed with python-hcl2), the Dockerfile, and the alerts/ and
dashboards/ files that the stack and Terraform load.

Usage: consistency.py [--repo DIR] [--no-terraform-render] [--only CHECK[,CHECK...]]
Prints one line per check and `consistency: N ok, M failing`; exit 1 when anything fails.
"""
from __future__ import annotations

import argparse
import difflib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import traceback
from pathlib import Path

import hcl2
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tf_lint import strip_meta, unq  # noqa: E402
from rust_env import workspace_env  # noqa: E402

SERVICES = ["vault", "concierge", "room-service"]
CONTAINER_PUBLIC_PORT = 8080
CONTAINER_ADMIN_PORT = 9090
PROBE_PORT = 9100
ECS_MAX_STOP_TIMEOUT = 120

# Programs whose environment is checked against their sources (scripts/infra/rust_env.py): the services
# (Env prefix, CommonSettings, std::env::var, telemetry) and the chat probe (clap `env = "..."`).
ENV_COMPONENTS = {
    **{svc: {"kind": "service", "dir": f"services/{svc}/src"} for svc in SERVICES},
    "chat-probe": {"kind": "clap", "file": "tools/casino/src/probe.rs"},
}
# Variables an artifact may set for a program although its sources do not read them. Empty: every
# name is found in the code (the OpenTelemetry SDK's OTEL_* names in the locked crates' sources, see
# rust_env.OTEL_FALLBACK for when those are not on the machine). Add a name here only with the reason
# it cannot be discovered.
UNDISCOVERABLE_ENV: dict[str, set] = {}
# Must come from a secret store on ECS, never a literal in a task definition.
SECRET_SUFFIXES = ("DATABASE_URL", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "INTERNAL_TOKEN",
                   "JWT_SIGNING_KEY", "GAME_PROVIDER_SECRETS", "PSP_PROVIDERS", "VAULT_INTERNAL_TOKEN")
# Added by modules/ecs-service to every template's variables.
MODULE_TEMPLATE_VARS = {"name_prefix", "execution_role_arn", "task_role_arn", "log_group", "adot_config_param_arn"}
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Ctx:
    def __init__(self, repo: Path, terraform_render: bool):
        self.repo = repo
        self.terraform_render = terraform_render
        self.notes: list[str] = []

    def path(self, rel: str) -> Path:
        return self.repo / rel

    def note(self, msg: str) -> None:
        if msg not in self.notes:
            self.notes.append(msg)


CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


# -------------------------------------------------------------------------------------------------
# Sources of truth
# -------------------------------------------------------------------------------------------------
def conventions(ctx: Ctx) -> dict:
    if hasattr(ctx, "_conv"):
        return ctx._conv
    text = ctx.path("docs/conventions.md").read_text()
    services = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0] in SERVICES:
            name = cells[0]
            pub = [int(x) for x in re.findall(r"\d+", cells[4])]
            adm = [int(x) for x in re.findall(r"\d+", cells[5])]
            services[name] = {
                "binary": cells[1].strip("`"),
                "prefix": cells[2].strip("`"),
                "metric_prefix": cells[3].strip("`"),
                "public_local": pub[0], "public_container": pub[1],
                "admin_local": adm[0], "admin_container": adm[1],
            }
    env_section = text.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    env_vars = set(re.findall(r"`P_([A-Z_]+)`", env_section))
    dbs = re.findall(r"`([a-z_]+)`", text.split("Databases:", 1)[1].split("\n", 1)[0])
    topics_section = text.split("## Kafka topics", 1)[1].split("\n## ", 1)[0]
    topics = [t for t in re.findall(r"`([a-z0-9_.-]+)`", topics_section) if re.search(r"\.v\d+$", t)]
    groups = re.findall(r"`([a-z0-9<>_ -]+)`", topics_section.split("Consumer groups:", 1)[1])
    ctx._conv = {
        "services": services, "env_suffixes": env_vars, "databases": dbs,
        "topics": topics, "dlq_suffix": ".dlq" if "<topic>.dlq" in topics_section else None,
        "groups": groups, "text": text,
    }
    return ctx._conv


def expected_topics(ctx: Ctx) -> tuple[list[str], str]:
    """All topic names, from crates/events when it defines them, else docs/conventions.md."""
    conv = conventions(ctx)
    src_dir = ctx.path("crates/events/src")
    consts = {}
    dlq_fn_suffix = None
    if src_dir.is_dir():
        for f in sorted(src_dir.rglob("*.rs")):
            m = re.search(r'fn\s+dlq\s*\([^)]*\)[^{]*\{\s*format!\("\{\w+\}([^"]+)"', f.read_text())
            if m:
                dlq_fn_suffix = m.group(1)
            for name, value in re.findall(r'pub\s+const\s+([A-Z0-9_]+)\s*:\s*&(?:\'static\s+)?str\s*=\s*"([^"]*)"\s*;',
                                          f.read_text()):
                consts[name] = value
    topic_values = [v for v in consts.values() if re.fullmatch(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.v\d+(\.dlq)?", v)]
    if topic_values:
        base = sorted({v for v in topic_values if not v.endswith(".dlq")})
        dlq_suffix = dlq_fn_suffix or next((v for k, v in consts.items() if "DLQ" in k and v.startswith(".")), None)
        assert dlq_suffix, "crates/events defines topics but no DLQ naming (fn dlq or a DLQ suffix constant)"
        names = sorted(set(base) | {b + dlq_suffix for b in base} | {v for v in topic_values if v.endswith(".dlq")})
        return names, f"crates/events/src (topic constants, DLQ suffix {dlq_suffix})"
    ctx.note("crates/events/src has no topic constants yet: topic names checked against docs/conventions.md")
    base = conv["topics"]
    return sorted(set(base) | {b + conv["dlq_suffix"] for b in base}), "docs/conventions.md"


def health_paths(ctx: Ctx) -> tuple[dict, str]:
    src = ctx.path("crates/observability/src")
    found = {}
    if src.is_dir():
        for f in sorted(src.rglob("*.rs")):
            text = f.read_text()
            for p in ("/livez", "/readyz"):
                if f'"{p}"' in text:
                    found.setdefault(p, f.relative_to(ctx.repo).as_posix())
    if len(found) == 2:
        return found, "crates/observability/src"
    ctx.note("crates/observability/src does not serve /livez and /readyz yet: health paths checked against docs/conventions.md")
    text = conventions(ctx)["text"]
    return {p: "docs/conventions.md" for p in ("/livez", "/readyz") if f"`{p}`" in text}, "docs/conventions.md"


# -------------------------------------------------------------------------------------------------
# Artifacts
# -------------------------------------------------------------------------------------------------
def compose(ctx: Ctx) -> dict:
    if not hasattr(ctx, "_compose"):
        ctx._compose = yaml.safe_load(ctx.path("docker-compose.yml").read_text())
    return ctx._compose


def task_def_text(ctx: Ctx, name: str) -> str:
    return ctx.path(f"deploy/ecs-task-defs/{name}.json").read_text()


def render(text: str, values: dict | None = None) -> dict:
    """Python stand-in for templatefile(): substitute ${name} and parse the JSON."""
    values = values or {}
    return json.loads(PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), f"PLACEHOLDER-{m.group(1)}")), text))


def task_def(ctx: Ctx, name: str) -> dict:
    return render(task_def_text(ctx, name), {"drain_delay_seconds": "15"})


def tf(ctx: Ctx, rel: str) -> dict:
    cache = ctx.__dict__.setdefault("_tf", {})
    if rel not in cache:
        with ctx.path(rel).open() as fh:
            cache[rel] = strip_meta(hcl2.load(fh))
    return cache[rel]


def tf_locals(ctx: Ctx, rel: str) -> dict:
    out = {}
    for block in tf(ctx, rel).get("locals", []):
        out.update({unq(k): v for k, v in block.items()})
    return out


def tf_variables(ctx: Ctx, rel: str) -> dict:
    out = {}
    for block in tf(ctx, rel).get("variable", []):
        for k, v in block.items():
            out[unq(k)] = v
    return out


def tf_blocks(ctx: Ctx, rel: str, kind: str, rtype: str | None = None) -> dict:
    out = {}
    for block in tf(ctx, rel).get(kind, []):
        if rtype is None:
            out.update({unq(k): v for k, v in block.items()})
        elif unq(next(iter(block))) == rtype:
            out.update({unq(k): v for k, v in block[next(iter(block))].items()})
    return out


def deep_unq(node):
    if isinstance(node, dict):
        return {unq(k): deep_unq(v) for k, v in node.items()}
    if isinstance(node, list):
        return [deep_unq(v) for v in node]
    return unq(node)


def app_container(td: dict, name: str) -> dict:
    for c in td["containerDefinitions"]:
        if c["name"] == name:
            return c
    raise AssertionError(f"no container named {name}")


def env_names(container: dict) -> tuple[set, set]:
    return ({e["name"] for e in container.get("environment", [])},
            {s["name"] for s in container.get("secrets", [])})


def code_env(ctx: Ctx) -> dict:
    """What each program reads, from its Rust sources (scripts/infra/rust_env.py)."""
    if not hasattr(ctx, "_code_env"):
        specs = {}
        for name, spec in ENV_COMPONENTS.items():
            spec = dict(spec)
            for key in ("dir", "file"):
                if key in spec:
                    spec[key] = ctx.path(spec[key])
            specs[name] = spec
        ctx._code_env = workspace_env(ctx.repo, specs)
        for n in ctx._code_env["notes"]:
            ctx.note(n)
    return ctx._code_env


def env_prefix(ctx: Ctx, comp: str) -> str:
    """`VAULT_` for a service; for the probe the leading word its variables share (`PROBE_`)."""
    c = code_env(ctx)["components"][comp]
    if c.prefix is not None:
        return c.prefix + code_env(ctx)["api"].separator
    firsts = {n.split("_", 1)[0] for n in c.reads}
    assert len(firsts) == 1, f"{comp}: its variables share no prefix ({sorted(c.reads)})"
    return firsts.pop() + "_"


def resolve_compose_value(value) -> str:
    """`${VAR:-default}` -> default (what `docker-compose config` yields in an empty environment)."""
    return re.sub(r"\$\{[A-Za-z_]\w*:?-([^}]*)\}", r"\1", str(value))


def env_problems(ctx: Ctx, comp: str, names: set, where: str, envs: set | None) -> list[str]:
    """Names set for `comp` that it does not read; with `envs` (the values of <P>_ENV the artifact
    deploys with), also variables it refuses to start without, or with, in those environments."""
    found = code_env(ctx)
    c = found["components"][comp]
    out = []
    for n in sorted(names):
        if n in c.reads or n in UNDISCOVERABLE_ENV.get(comp, set()):
            continue
        owner = next((o for o in found["components"] if o != comp and n.startswith(env_prefix(ctx, o))
                      and not n.startswith(env_prefix(ctx, comp))), None)
        if owner:
            out.append(f"{where}: {n} has {owner}'s prefix; {comp} does not read it")
            continue
        hint = difflib.get_close_matches(n, list(c.reads), n=1, cutoff=0.8)
        out.append(f"{where}: {comp} does not read {n} (not found in {', '.join(c.sources)})"
                   + (f"; did you mean {hint[0]}?" if hint else ""))
    if envs is not None:
        shown = "/".join(sorted(envs)) or "unset"
        for r in sorted(c.reads.values(), key=lambda r: r.name):
            if r.required(envs) and r.name not in names:
                out.append(f"{where}: {comp} requires {r.name} (refuses to start without it when "
                           f"{env_prefix(ctx, comp)}ENV={shown}: {r.where})")
            if r.refused(envs) and r.name in names:
                out.append(f"{where}: {comp} refuses to start with {r.name} set when "
                           f"{env_prefix(ctx, comp)}ENV={shown} ({r.where})")
    return out


def assert_env(ctx: Ctx, comp: str, names: set, where: str, envs: set | None) -> None:
    problems = env_problems(ctx, comp, names, where, envs)
    assert not problems, "; ".join(problems)


def terraform_environments(ctx: Ctx) -> set:
    """The values var.environment may take (its validation), i.e. the <P>_ENV of every ECS task."""
    common = deep_unq(tf_locals(ctx, "infra/terraform/ecs.tf")["common_template_vars"])
    assert common["env"] == "${var.environment}", f"common_template_vars.env = {common['env']}"
    validation = tf_variables(ctx, "infra/terraform/variables.tf")["environment"]["validation"][0]
    m = re.search(r"contains\(\[([^\]]*)\],\s*var\.environment\)", unq(validation["condition"]))
    assert m, f"variables.tf: cannot read the allowed environments from {unq(validation['condition'])}"
    return set(re.findall(r'"([\w-]+)"', m.group(1)))


def ecs_environments(ctx: Ctx, comp: str, values: dict) -> set:
    prefix = env_prefix(ctx, comp)
    if prefix + "ENV" not in code_env(ctx)["components"][comp].reads:
        return set()
    value = values.get(prefix + "ENV")
    if value is None:
        return {code_env(ctx)["components"][comp].reads[prefix + "ENV"].default_value or ""}
    if value == "PLACEHOLDER-env":
        return terraform_environments(ctx)
    assert "PLACEHOLDER-" not in value, f"{comp}: {prefix}ENV = {value}"
    return {value}


def compose_environments(ctx: Ctx, comp: str, env: dict) -> set:
    prefix = env_prefix(ctx, comp)
    reads = code_env(ctx)["components"][comp].reads
    if prefix + "ENV" not in reads:
        return set()
    if prefix + "ENV" in env:
        return {resolve_compose_value(env[prefix + "ENV"])}
    return {reads[prefix + "ENV"].default_value or ""}


# -------------------------------------------------------------------------------------------------
# Checks
# -------------------------------------------------------------------------------------------------
@check
def conventions_parsed(ctx):
    conv = conventions(ctx)
    assert set(conv["services"]) == set(SERVICES), f"services table: {sorted(conv['services'])}"
    for svc, s in conv["services"].items():
        assert s["public_container"] == CONTAINER_PUBLIC_PORT and s["admin_container"] == CONTAINER_ADMIN_PORT, svc
    assert {"PUBLIC_ADDR", "ADMIN_ADDR", "DATABASE_URL", "KAFKA_BROKERS", "DRAIN_DELAY_SECONDS",
            "SHUTDOWN_TIMEOUT_SECONDS", "INTERNAL_TOKEN"} <= conv["env_suffixes"], conv["env_suffixes"]
    assert conv["databases"] == ["vault", "concierge", "room_service"], conv["databases"]
    assert len(conv["topics"]) == 5, conv["topics"]
    return f"{len(conv['services'])} services, {len(conv['env_suffixes'])} env names, {len(conv['topics'])} topics"


@check
def health_paths_in_code_or_conventions(ctx):
    paths, source = health_paths(ctx)
    assert set(paths) == {"/livez", "/readyz"}, f"{source} lacks {sorted({'/livez', '/readyz'} - set(paths))}"
    return f"/livez and /readyz from {source}"


@check
def alb_health_checks_match_services(ctx):
    paths, source = health_paths(ctx)
    loc = tf_locals(ctx, "infra/terraform/locals.tf")
    hc = unq(loc["health_check_path"])
    assert hc in paths, f"ALB health check path {hc} is not served ({source})"
    assert hc == "/readyz", f"ALB must check readiness (/readyz), not {hc}"
    assert int(loc["public_port"]) == CONTAINER_PUBLIC_PORT and int(loc["admin_port"]) == CONTAINER_ADMIN_PORT
    tg = tf_blocks(ctx, "infra/terraform/modules/alb/main.tf", "resource", "aws_lb_target_group")["this"]
    h = deep_unq(tg["health_check"][0])
    assert h["path"] == "${var.health_check_path}" and h["port"] == "traffic-port", h
    assert str(h["matcher"]) == "200" and h["protocol"] == "HTTP", h
    assert unq(tg["port"]) == "${var.target_port}" and unq(tg["target_type"]) == "ip"
    assert unq(tg["deregistration_delay"]) == "${var.deregistration_delay_seconds}"
    main = tf_blocks(ctx, "infra/terraform/main.tf", "module")["alb"]
    assert unq(main["health_check_path"]) == "${local.health_check_path}"
    assert unq(main["target_port"]) == "${local.public_port}"
    assert unq(main["deregistration_delay_seconds"]) == "${var.drain_delay_seconds}", \
        "deregistration delay must be the services' drain delay"
    for svc in SERVICES:
        env = {e["name"]: e["value"] for e in app_container(render(task_def_text(ctx, svc)), svc)["environment"]}
        prefix = conventions(ctx)["services"][svc]["prefix"]
        assert env[prefix + "DRAIN_DELAY_SECONDS"] == "PLACEHOLDER-drain_delay_seconds", \
            f"{svc}: {prefix}DRAIN_DELAY_SECONDS must be ${{drain_delay_seconds}} (= ALB deregistration delay)"
    common = deep_unq(tf_locals(ctx, "infra/terraform/ecs.tf")["common_template_vars"])
    assert common["drain_delay_seconds"] == "${tostring(var.drain_delay_seconds)}"
    return f"{hc} on traffic-port {CONTAINER_PUBLIC_PORT}, deregistration delay = drain delay"


@check
def alb_routing(ctx):
    routes = deep_unq(tf_locals(ctx, "infra/terraform/locals.tf")["routes"])
    assert set(routes) == set(SERVICES), routes.keys()
    prios = [r["priority"] for r in routes.values()]
    assert len(set(prios)) == len(prios), "duplicate listener rule priorities"
    for svc, r in routes.items():
        assert 1 <= len(r["path_patterns"]) <= 5, f"{svc}: ALB allows 1-5 path patterns per rule"
    assert "/socket.io/*" in routes["room-service"]["path_patterns"] and routes["room-service"]["stickiness"] is True
    assert routes["room-service"]["priority"] < routes["vault"]["priority"]
    assert routes["concierge"]["priority"] < routes["vault"]["priority"]
    assert {"/api/*", "/.well-known/*"} <= set(routes["vault"]["path_patterns"])
    return "concierge and room-service before the vault catch-all; socket.io sticky"


@check
def task_definition_placeholders_are_provided(ctx):
    ecs = tf_locals(ctx, "infra/terraform/ecs.tf")
    common = set(deep_unq(ecs["common_template_vars"]))
    per_service = deep_unq(ecs["service_template_vars"])
    module_main = ctx.path("infra/terraform/modules/ecs-service/main.tf").read_text()
    for v in MODULE_TEMPLATE_VARS:
        assert re.search(rf"\b{v}\s*=", module_main), f"modules/ecs-service no longer provides {v}"
    modules = tf_blocks(ctx, "infra/terraform/ecs.tf", "module")
    provided = {svc: common | set(per_service[svc]) | MODULE_TEMPLATE_VARS for svc in SERVICES}
    provided["chat-probe"] = set(deep_unq(modules["chat_probe"]["template_vars"])) | MODULE_TEMPLATE_VARS
    provided["bootstrap"] = set(deep_unq(modules["bootstrap"]["template_vars"])) | MODULE_TEMPLATE_VARS
    files = sorted(p.stem for p in ctx.path("deploy/ecs-task-defs").glob("*.json"))
    assert sorted(provided) == files, f"task definitions {files} vs Terraform {sorted(provided)}"
    for name, keys in provided.items():
        used = set(PLACEHOLDER.findall(task_def_text(ctx, name)))
        missing = used - keys
        assert not missing, f"{name}.json uses {sorted(missing)}, which Terraform does not pass"
        unused = keys - used - MODULE_TEMPLATE_VARS
        if name in SERVICES:
            unused -= common  # shared values a given service may not need
        assert not unused, f"Terraform passes {sorted(unused)} to {name}.json, which does not use them"
    adot_used = set(PLACEHOLDER.findall(ctx.path("deploy/ecs-task-defs/adot-config.yaml").read_text()))
    ecs_text = ctx.path("infra/terraform/ecs.tf").read_text()
    for block in re.findall(r"adot_config\s*=\s*templatefile\(local\.adot_template,\s*\{(.*?)\}\)", ecs_text, re.S):
        keys = set(re.findall(r"^\s*(\w+)\s*=", block, re.M))
        assert keys == adot_used, f"adot-config.yaml uses {sorted(adot_used)}, Terraform passes {sorted(keys)}"
    return f"{len(provided)} templates, placeholders and Terraform variables match"


@check
def task_definitions_render_with_terraform(ctx):
    if not ctx.terraform_render:
        return "skipped (--no-terraform-render)"
    tfbin = shutil.which("terraform")
    assert tfbin, "terraform not on PATH"
    with tempfile.TemporaryDirectory() as tmp:
        outputs = []
        for f in sorted(ctx.path("deploy/ecs-task-defs").glob("*.json")):
            keys = sorted(set(PLACEHOLDER.findall(f.read_text())))
            values = ", ".join(f'{k} = "{k}-value"' for k in keys)
            outputs.append(f'output "{f.stem.replace("-", "_")}" {{\n  value = jsondecode(templatefile("{f}", {{ {values} }}))\n}}\n')
        adot = ctx.path("deploy/ecs-task-defs/adot-config.yaml")
        keys = sorted(set(PLACEHOLDER.findall(adot.read_text())))
        values = ", ".join(f'{k} = "{k}-value"' for k in keys)
        outputs.append(f'output "adot" {{\n  value = yamldecode(templatefile("{adot}", {{ {values} }}))\n}}\n')
        Path(tmp, "main.tf").write_text("".join(outputs))
        env = {"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": "/dev/null",
               "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp}
        for cmd in (["init", "-input=false", "-no-color", "-backend=false"],
                    ["apply", "-auto-approve", "-input=false", "-no-color"],
                    ["output", "-json"]):
            res = subprocess.run([tfbin, f"-chdir={tmp}", *cmd], capture_output=True, text=True, env=env, timeout=120)
            assert res.returncode == 0, f"terraform {cmd[0]}: {res.stderr.strip() or res.stdout.strip()}"
        out = json.loads(res.stdout)
    for name in SERVICES:
        td = out[name.replace("-", "_")]["value"]
        assert td["containerDefinitions"][0]["name"] == name
    return f"{len(out)} templates rendered by terraform's templatefile()"


@check
def ecs_task_definitions_match_conventions(ctx):
    conv = conventions(ctx)
    validation = tf_variables(ctx, "infra/terraform/variables.tf")["drain_delay_seconds"]["validation"][0]
    max_drain = int(re.search(r"var\.drain_delay_seconds\s*<=\s*(\d+)", unq(validation["condition"])).group(1))
    for svc in SERVICES:
        meta = conv["services"][svc]
        prefix = meta["prefix"]
        td = task_def(ctx, svc)
        c = app_container(td, svc)
        ports = sorted(p["containerPort"] for p in c["portMappings"])
        assert ports == [meta["public_container"], meta["admin_container"]], f"{svc}: ports {ports}"
        env, secrets = env_names(c)
        # The common settings of docs/conventions.md must all be set on ECS: the code's defaults are for
        # local runs (loopback listeners, local database and broker, no SCRAM). Names the code reads and
        # requires are checked against the sources in env_names_match_code.
        required = {prefix + s for s in conv["env_suffixes"]}
        missing = required - env - secrets
        assert not missing, f"{svc}: task definition does not set {sorted(missing)}"
        for n in env:
            assert not n.endswith(SECRET_SUFFIXES), f"{svc}: {n} must come from `secrets`, not `environment`"
        for s in c.get("secrets", []):
            assert s["valueFrom"].startswith("PLACEHOLDER-"), f"{svc}: {s['name']} valueFrom must be a rendered ARN"
        values = {e["name"]: e["value"] for e in c["environment"]}
        assert values[prefix + "PUBLIC_ADDR"] == f"0.0.0.0:{meta['public_container']}"
        assert values[prefix + "ADMIN_ADDR"] == f"0.0.0.0:{meta['admin_container']}"
        assert values[prefix + "KAFKA_SECURITY_PROTOCOL"] == "sasl_ssl"
        assert c["healthCheck"]["command"] == ["CMD", f"/usr/local/bin/{meta['binary']}", "healthcheck"], c["healthCheck"]
        shutdown = int(values[prefix + "SHUTDOWN_TIMEOUT_SECONDS"])
        # The deadline counts from the signal and includes the drain delay (crates/observability
        # lifecycle.rs); its backstop kills the process BACKSTOP_GRACE (1 s) later. ECS sends SIGKILL
        # stopTimeout after SIGTERM, so stopTimeout must exceed deadline + backstop, and the drain delay
        # (at most max_drain, validated in variables.tf) must leave time for in-flight work.
        assert shutdown + 1 < c["stopTimeout"] <= ECS_MAX_STOP_TIMEOUT, \
            f"{svc}: stopTimeout {c['stopTimeout']} must exceed the {shutdown} s shutdown deadline (+1 s backstop) and be <= 120"
        assert max_drain < shutdown, f"drain delay up to {max_drain} s leaves no time inside the {shutdown} s deadline"
        assert c["logConfiguration"]["logDriver"] == "awslogs"
        assert values["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    return "ports, env names, secrets, healthcheck, stopTimeout of vault, concierge, room-service"


@check
def ecs_task_definitions_hardening_and_sizes(ctx):
    fargate = {256: (512, 2048), 512: (1024, 4096), 1024: (2048, 8192), 2048: (4096, 16384), 4096: (8192, 30720)}
    for f in sorted(ctx.path("deploy/ecs-task-defs").glob("*.json")):
        td = render(f.read_text())
        assert td["requiresCompatibilities"] == ["FARGATE"] and td["networkMode"] == "awsvpc", f.name
        cpu, mem = int(td["cpu"]), int(td["memory"])
        lo, hi = fargate[cpu]
        assert lo <= mem <= hi, f"{f.name}: {cpu} CPU units allow {lo}-{hi} MiB, not {mem}"
        assert sum(c.get("cpu", 0) for c in td["containerDefinitions"]) <= cpu, f"{f.name}: container cpu > task cpu"
        assert sum(c.get("memory", c.get("memoryReservation", 0)) for c in td["containerDefinitions"]) <= mem, \
            f"{f.name}: container memory > task memory"
        for c in td["containerDefinitions"]:
            assert c.get("readonlyRootFilesystem") is True, f"{f.name}/{c['name']}: read-only root filesystem"
            assert c.get("privileged", False) is False, f"{f.name}/{c['name']}: privileged"
            assert "ALL" in c.get("linuxParameters", {}).get("capabilities", {}).get("drop", []), \
                f"{f.name}/{c['name']}: drop all capabilities"
            assert c.get("stopTimeout", 30) <= ECS_MAX_STOP_TIMEOUT
            if "user" in c:
                assert not c["user"].split(":")[0] in ("0", "root"), f"{f.name}/{c['name']}: runs as root"
            for e in c.get("environment", []):
                assert not re.search(r"(PASSWORD|SECRET|TOKEN|_KEY)$", e["name"]), \
                    f"{f.name}/{c['name']}: {e['name']} looks secret; use `secrets`"
            assert c["logConfiguration"]["logDriver"] == "awslogs"
        images = [c["image"] for c in td["containerDefinitions"]]
        if f.stem != "bootstrap":
            app = td["containerDefinitions"][0]
            assert app.get("user") == "10001:10001", f"{f.name}: app container must run as uid 10001"
            assert "PLACEHOLDER-adot_image" in images, f"{f.name}: ADOT collector sidecar missing"
            adot = next(c for c in td["containerDefinitions"] if c["image"] == "PLACEHOLDER-adot_image")
            assert {"AOT_CONFIG_CONTENT"} == {s["name"] for s in adot["secrets"]}
    return "Fargate sizes, read-only root, no privileges, non-root, no secret-looking env, ADOT sidecar"


@check
def adot_sidecar_config(ctx):
    text = ctx.path("deploy/ecs-task-defs/adot-config.yaml").read_text()
    cfg = yaml.safe_load(PLACEHOLDER.sub(lambda m: f"{m.group(1)}-value", text).replace(
        "127.0.0.1:metrics_port-value", "127.0.0.1:9999"))
    recv = cfg["receivers"]
    assert recv["otlp"]["protocols"]["http"]["endpoint"] == "127.0.0.1:4318"
    sc = recv["prometheus"]["config"]["scrape_configs"][0]
    assert sc["job_name"] == "service-value" and sc["metrics_path"] == "/metrics"
    assert sc["static_configs"][0]["targets"] == ["127.0.0.1:9999"]
    pipes = cfg["service"]["pipelines"]
    assert pipes["traces"]["exporters"] == ["awsxray"] and pipes["metrics"]["exporters"] == ["prometheusremotewrite"]
    assert cfg["exporters"]["prometheusremotewrite"]["auth"]["authenticator"] == "sigv4auth"
    ecs_text = ctx.path("infra/terraform/ecs.tf").read_text()
    assert re.search(r"service\s*=\s*each\.key[^}]*metrics_port\s*=\s*local\.admin_port", ecs_text, re.S), \
        "services' ADOT must scrape the admin port (local.admin_port)"
    assert re.search(r'service\s*=\s*"chat-probe"[^}]*metrics_port\s*=\s*9100', ecs_text, re.S)
    return "OTLP 127.0.0.1:4318 -> X-Ray; admin /metrics -> AMP remote write (SigV4); job = service name"


@check
def compose_services_match_conventions(ctx):
    conv = conventions(ctx)
    c = compose(ctx)["services"]
    for svc in SERVICES:
        meta = conv["services"][svc]
        prefix = meta["prefix"]
        s = c[svc]
        env = s["environment"]
        assert isinstance(env, dict), f"{svc}: use the mapping form of environment"
        # As on ECS, the conventions' common settings are set explicitly (SCRAM aside: plaintext locally).
        required = {prefix + x for x in conv["env_suffixes"]} - {prefix + "KAFKA_SASL_USERNAME", prefix + "KAFKA_SASL_PASSWORD"}
        missing = required - set(env)
        assert not missing, f"compose {svc} does not set {sorted(missing)}"
        assert env[prefix + "PUBLIC_ADDR"] == f"0.0.0.0:{meta['public_container']}"
        assert env[prefix + "ADMIN_ADDR"] == f"0.0.0.0:{meta['admin_container']}"
        assert env[prefix + "KAFKA_SECURITY_PROTOCOL"] == "plaintext"
        db = conv["databases"][SERVICES.index(svc)]
        assert re.search(rf"@postgres:5432/{db}$", env[prefix + "DATABASE_URL"]), env[prefix + "DATABASE_URL"]
        assert s["healthcheck"]["test"] == ["CMD", f"/usr/local/bin/{meta['binary']}", "healthcheck"]
        assert s["build"]["target"] == svc
        ports = sorted(s["ports"])
        assert ports == sorted([f"127.0.0.1:{meta['public_local']}:{meta['public_container']}",
                                f"127.0.0.1:{meta['admin_local']}:{meta['admin_container']}"]), ports
        deps = s["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["kafka-init"]["condition"] == "service_completed_successfully"
        for dep, spec in deps.items():
            if dep in SERVICES:
                assert spec["condition"] == "service_healthy", f"{svc} -> {dep}"
        grace = int(str(s["stop_grace_period"]).rstrip("s"))
        assert grace > int(env[prefix + "SHUTDOWN_TIMEOUT_SECONDS"]), f"{svc}: stop_grace_period <= shutdown deadline"
    probe = c["chat-probe"]
    assert probe["command"] == ["probe", "chat", "--serve", f"0.0.0.0:{PROBE_PORT}"]
    assert probe["build"]["target"] == "casino"
    assert {"PROBE_VAULT_URL", "PROBE_ROOM_URL"} <= set(probe["environment"])
    assert probe["environment"]["PROBE_VAULT_URL"] == f"http://vault:{CONTAINER_PUBLIC_PORT}"
    assert probe["environment"]["PROBE_ROOM_URL"] == f"http://room-service:{CONTAINER_PUBLIC_PORT}"
    assert c["concierge"]["environment"]["CONCIERGE_VAULT_INTERNAL_URL"] == f"http://vault:{CONTAINER_ADMIN_PORT}"
    return "env names, addresses, ports, healthchecks, depends_on, build targets, chat probe"


def dockerfile_env(ctx: Ctx) -> dict:
    """Stage name -> {variable: value} that the stage's ENV instructions (and its base stages') set."""
    text = re.sub(r"\\\n", " ", ctx.path("Dockerfile").read_text())
    stages, bases, cur = {}, {}, None
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            cur = m.group(2) or f"stage{len(stages)}"
            stages[cur], bases[cur] = {}, m.group(1)
            continue
        m = re.match(r"ENV\s+(.*)", line, re.I)
        if m and cur:
            body = m.group(1).strip()
            pairs = re.findall(r'([A-Za-z_]\w*)=("(?:[^"\\]|\\.)*"|\S*)', body)
            if pairs:
                stages[cur].update({k: v.strip('"') for k, v in pairs})
            else:  # legacy `ENV NAME value`
                k, _, v = body.partition(" ")
                stages[cur][k] = v.strip()
    out = {}
    for name in stages:
        env, chain, n = {}, [], name
        while n in stages and n not in chain:
            chain.append(n)
            n = bases[n]
        for n in reversed(chain):
            env.update(stages[n])
        out[name] = env
    return out


def terraform_env_names(ctx: Ctx) -> dict:
    """Program -> {(variable, file)} for every string in infra/terraform/**/*.tf (comments excluded:
    the files are parsed) that contains a name with one of the programs' prefixes."""
    prefixes = {env_prefix(ctx, comp): comp for comp in ENV_COMPONENTS}
    pattern = re.compile(r"(?<![A-Za-z0-9_])((?:" + "|".join(map(re.escape, prefixes)) + r")[A-Z0-9_]*[A-Z0-9])(?![A-Za-z0-9_])")
    out: dict[str, set] = {comp: set() for comp in ENV_COMPONENTS}
    root = ctx.path("infra/terraform")
    for f in sorted(root.rglob("*.tf")):
        if {"node_modules", "build", ".terraform"} & set(f.relative_to(root).parts):
            continue
        rel = f.relative_to(ctx.repo).as_posix()

        def walk(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(k)
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
            elif isinstance(node, str):
                for m in pattern.finditer(node):
                    comp = next(c for p, c in prefixes.items() if m.group(1).startswith(p))
                    out[comp].add((m.group(1), rel))

        walk(tf(ctx, rel))
    return out


@check
def env_names_match_code(ctx):
    """Every variable docker-compose, the ECS task definitions, the Dockerfile and Terraform set for a
    program is one its sources read, and every variable it refuses to start without is set."""
    found = code_env(ctx)["components"]
    problems, counted = [], 0
    compose_services = compose(ctx)["services"]
    stages = dockerfile_env(ctx)
    for comp in ENV_COMPONENTS:
        assert found[comp].reads, f"no environment reads found for {comp} in {found[comp].sources}"
        td_file = ctx.path(f"deploy/ecs-task-defs/{comp}.json")
        if td_file.exists():
            c = app_container(render(td_file.read_text()), comp)
            env, secrets = env_names(c)
            values = {e["name"]: e["value"] for e in c.get("environment", [])}
            problems += env_problems(ctx, comp, env | secrets, f"deploy/ecs-task-defs/{comp}.json",
                                     ecs_environments(ctx, comp, values))
            counted += len(env | secrets)
        if comp in compose_services:
            env = compose_services[comp].get("environment") or {}
            assert isinstance(env, dict), f"compose {comp}: use the mapping form of environment"
            problems += env_problems(ctx, comp, set(env), f"docker-compose.yml {comp}",
                                     compose_environments(ctx, comp, env))
            counted += len(env)
        target = compose_services.get(comp, {}).get("build", {}).get("target", comp)
        if target in stages:
            problems += env_problems(ctx, comp, set(stages[target]), f"Dockerfile target {target}", None)
            counted += len(stages[target])
    for comp, hits in terraform_env_names(ctx).items():
        for name, rel in sorted(hits):
            problems += env_problems(ctx, comp, {name}, rel, None)
            counted += 1
    assert not problems, "; ".join(problems)
    summary = ", ".join(f"{c} {len(found[c].reads)}" for c in ENV_COMPONENTS)
    return f"{counted} names set by compose, ECS, Dockerfile and Terraform are read by their program ({summary} variables read); required ones set"


def conventions_env_table(ctx: Ctx) -> dict:
    """docs/conventions.md's service-specific table: program -> [name or glob]."""
    text = conventions(ctx)["text"]
    section = text.split("## Service-specific environment variables", 1)[1].split("\n## ", 1)[0]
    out: dict[str, list] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        who = cells[1].replace("chat probe", "chat-probe")
        if who in ENV_COMPONENTS:
            out.setdefault(who, []).extend(re.findall(r"`([A-Z0-9_*]+)`", cells[0]))
    return out


def documented(name: str, patterns: list) -> bool:
    return any(re.fullmatch(p.replace("*", "[A-Z0-9_]*"), name) for p in patterns)


@check
def conventions_env_names_are_read(ctx):
    """docs/conventions.md names only variables the code reads; names the artifacts set that it does not
    document are reported as notes."""
    conv = conventions(ctx)
    found = code_env(ctx)["components"]
    table = conventions_env_table(ctx)
    problems = []
    for svc in SERVICES:
        prefix = env_prefix(ctx, svc)
        assert prefix == conv["services"][svc]["prefix"], \
            f"{svc}: the code's prefix {prefix} differs from docs/conventions.md {conv['services'][svc]['prefix']}"
        for suffix in sorted(conv["env_suffixes"]):
            if prefix + suffix not in found[svc].reads:
                problems.append(f"docs/conventions.md: P_{suffix}, but {svc} does not read {prefix}{suffix}")
    for comp, patterns in table.items():
        for p in patterns:
            if not any(documented(n, [p]) for n in found[comp].reads):
                problems.append(f"docs/conventions.md: {p} ({comp}) matches nothing {comp} reads")
    assert not problems, "; ".join(problems)
    compose_services = compose(ctx)["services"]
    for comp in ENV_COMPONENTS:
        prefix = env_prefix(ctx, comp)
        common = {prefix + s for s in conv["env_suffixes"]} if comp in SERVICES else set()
        set_names = set((compose_services.get(comp) or {}).get("environment") or {})
        td_file = ctx.path(f"deploy/ecs-task-defs/{comp}.json")
        if td_file.exists():
            e, sec = env_names(app_container(render(td_file.read_text()), comp))
            set_names |= e | sec
        for n in sorted(set_names):
            if n.startswith(prefix) and n not in common and not documented(n, table.get(comp, [])):
                ctx.note(f"{n} ({comp}) is set by the deployment artifacts but not named in docs/conventions.md")
    return f"common P_* names read by every service; {sum(map(len, table.values()))} service-specific entries match reads"


@check
def room_service_instance_id_not_static(ctx):
    """ROOM_SERVICE_INSTANCE_ID names the task's live consumer group (room-service-live-<id>): one
    static value in the task definition would put every task in the same group, so each would see only
    part of the live events. Unset on ECS, Room-Service uses the ECS task id from the task metadata
    endpoint (ECS_CONTAINER_METADATA_URI_V4, set by ECS itself)."""
    name = env_prefix(ctx, "room-service") + "INSTANCE_ID"
    reads = code_env(ctx)["components"]["room-service"].reads
    if name not in reads:
        ctx.note(f"room-service no longer reads {name}: room_service_instance_id_not_static checks nothing")
    c = app_container(render(task_def_text(ctx, "room-service")), "room-service")
    env, secrets = env_names(c)
    assert name not in env | secrets, \
        f"deploy/ecs-task-defs/room-service.json sets {name}: every task would share one live consumer group"
    target = compose(ctx)["services"]["room-service"]["build"]["target"]
    assert name not in dockerfile_env(ctx).get(target, {}), f"Dockerfile target {target} sets {name}"
    hits = sorted(rel for n, rel in terraform_env_names(ctx)["room-service"] if n == name)
    assert not hits, f"{', '.join(hits)} set {name}"
    if "ECS_CONTAINER_METADATA_URI_V4" not in reads:
        ctx.note("room-service does not read ECS_CONTAINER_METADATA_URI_V4: without "
                 f"{name} each task gets a random id (still one group per task)")
    return f"{name} unset in ECS, Dockerfile and Terraform (each task derives its own id)"


@check
def compose_stack_wiring(ctx):
    c = compose(ctx)["services"]
    conv = conventions(ctx)
    init_sql = ctx.path("deploy/compose/postgres/init-databases.sql").read_text()
    created = re.findall(r"CREATE DATABASE (\w+);", init_sql)
    assert created == conv["databases"], f"init script creates {created}"
    assert any("init-databases.sql:/docker-entrypoint-initdb.d/" in v for v in c["postgres"]["volumes"])
    kafka_env = c["kafka"]["environment"]
    assert "broker,controller" == kafka_env["KAFKA_PROCESS_ROLES"], "single-node KRaft"
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for svc in SERVICES:
        prefix = conv["services"][svc]["prefix"]
        assert c[svc]["environment"][prefix + "KAFKA_BROKERS"] in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
        assert c[svc]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    otel = yaml.safe_load(ctx.path("deploy/compose/otel-collector/config.yaml").read_text())
    assert otel["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert otel["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"
    prom = yaml.safe_load(ctx.path("deploy/compose/prometheus/prometheus.yml").read_text())
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in prom["scrape_configs"]}
    for svc in SERVICES:
        assert jobs.get(svc) == [f"{svc}:{CONTAINER_ADMIN_PORT}"], f"prometheus job {svc}: {jobs.get(svc)}"
    assert jobs.get("chat-probe") == [f"chat-probe:{PROBE_PORT}"]
    assert prom["rule_files"] == ["/etc/prometheus/rules/*.rules.yml"]
    assert "./alerts:/etc/prometheus/rules:ro" in c["prometheus"]["volumes"]
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    am = c["alertmanager"]
    assert "./alerts/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in am["volumes"]
    assert "./deploy/compose/secrets:/etc/alertmanager/secrets:ro" in am["volumes"]
    gitignore = ctx.path("deploy/compose/secrets/.gitignore").read_text().split()
    assert gitignore[:1] == ["*"] or "*" in gitignore, "deploy/compose/secrets must be git-ignored"
    g = c["grafana"]["volumes"]
    assert "./dashboards:/var/lib/grafana/dashboards:ro" in g
    assert "./deploy/compose/grafana/provisioning:/etc/grafana/provisioning:ro" in g
    prov = yaml.safe_load(ctx.path("deploy/compose/grafana/provisioning/dashboards/dashboards.yml").read_text())
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    return f"databases {created}, KRaft, OTLP -> Jaeger, scrape jobs {sorted(jobs)}, alerts/ and dashboards/ mounted"


@check
def topics_match_events_crate(ctx):
    names, source = expected_topics(ctx)
    tv = deep_unq(tf_variables(ctx, "infra/terraform/variables.tf")["kafka_topics"]["default"])
    tf_names = sorted(t["name"] for t in tv)
    assert tf_names == names, f"Terraform kafka_topics {tf_names} != {source} {names}"
    for t in tv:
        assert int(t["partitions"]) >= 1 and int(t["retention_ms"]) > 0, t
    compose_topics = []
    for line in ctx.path("deploy/compose/kafka/topics.txt").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            compose_topics.append(line.split()[0])
    assert sorted(compose_topics) == names, f"deploy/compose/kafka/topics.txt {sorted(compose_topics)} != {names}"
    obs = deep_unq(tf_variables(ctx, "infra/terraform/modules/observability/variables.tf"))
    lag = obs["consumer_lag_alarms"]["default"]
    groups = conventions(ctx)["groups"]
    for group, topics in lag.items():
        assert group in groups, f"consumer group {group} not in docs/conventions.md {groups}"
        assert set(topics) <= set(names), f"lag alarm topics {topics} not all known"
    assert "concierge" in lag, "EstimatedMaxTimeLag alarm for the concierge group"
    bootstrap = ctx.path("deploy/ecs-task-defs/bootstrap.json").read_text()
    assert "${kafka_topics}" in bootstrap
    ecs = ctx.path("infra/terraform/ecs.tf").read_text()
    assert re.search(r'kafka_topics\s*=\s*join\(",", \[for t in var\.kafka_topics', ecs)
    return f"{len(names)} topics (source: {source}) in Terraform, compose and the lag alarms"


@check
def databases_bootstrap(ctx):
    conv = conventions(ctx)
    td = render(ctx.path("deploy/ecs-task-defs/bootstrap.json").read_text())
    dbc = app_container(td, "create-databases")
    env = {e["name"]: e["value"] for e in dbc["environment"]}
    assert env["SERVICE_DATABASES"].split() == conv["databases"]
    secret_names = {s["name"] for s in dbc["secrets"]}
    for db in conv["databases"]:
        assert f"DB_PASSWORD_{db}" in secret_names, db
    loc = deep_unq(tf_locals(ctx, "infra/terraform/locals.tf")["services"])
    assert [loc[s]["db"] for s in SERVICES] == conv["databases"]
    for s in SERVICES:
        assert loc[s]["binary"] == conv["services"][s]["binary"]
        assert loc[s]["template"].endswith(f"/deploy/ecs-task-defs/{s}.json")
    return "bootstrap creates " + ", ".join(conv["databases"])


@check
def rule_files_loaded_by_terraform_are_alerts_rules(ctx):
    obs_main = ctx.path("infra/terraform/modules/observability/main.tf").read_text()
    assert re.search(r'fileset\(var\.alerts_dir,\s*"\*\.rules\.yml"\)', obs_main), "fileset(var.alerts_dir, \"*.rules.yml\")"
    assert re.search(r'data\s*=\s*file\("\$\{var\.alerts_dir\}/\$\{each\.value\}"\)', obs_main), "data = file(...)"
    loc = tf_locals(ctx, "infra/terraform/locals.tf")
    assert unq(loc["alerts_dir"]) == '${coalesce(var.alerts_dir, "${path.module}/../../alerts")}', loc["alerts_dir"]
    resolved = (ctx.path("infra/terraform") / "../../alerts").resolve()
    assert resolved == ctx.path("alerts").resolve(), resolved
    main = tf_blocks(ctx, "infra/terraform/main.tf", "module")["observability"]
    assert unq(main["alerts_dir"]) == "${local.alerts_dir}"
    copies = [p for p in ctx.path("infra").rglob("*.rules.y*ml")] + [p for p in ctx.path("deploy").rglob("*.rules.y*ml")]
    assert not copies, f"rule files copied outside alerts/: {copies}"
    files = sorted(p.name for p in ctx.path("alerts").glob("*.rules.yml")) if ctx.path("alerts").is_dir() else []
    if not files:
        ctx.note("alerts/ has no *.rules.yml yet: AMP and compose Prometheus load no rules until it does")
    return f"Terraform and compose load exactly alerts/*.rules.yml ({len(files)} files: {', '.join(files) or 'none yet'})"


def workspace_features(ctx: Ctx, dep: str) -> list[str] | None:
    """Features of `dep` in [workspace.dependencies] plus those members add (`{ workspace = true, features = [...] }`)."""
    manifests = [ctx.path("Cargo.toml")] + sorted(p for d in ("crates", "services", "tools") if ctx.path(d).is_dir()
                                                  for p in ctx.path(d).rglob("Cargo.toml") if "target" not in p.parts)
    features: list[str] | None = None
    for manifest in manifests:
        for m in re.finditer(rf'^{re.escape(dep)}\s*=\s*\{{([^}}]*)\}}', manifest.read_text(), re.M):
            features = features or []
            f = re.search(r"features\s*=\s*\[([^\]]*)\]", m.group(1))
            if f:
                features += [x for x in re.findall(r'"([^"]+)"', f.group(1)) if x not in features]
    return features


@check
def clients_can_speak_tls_on_aws(ctx):
    """On AWS every client connection is TLS: MSK is SASL_SSL + SCRAM only (librdkafka needs OpenSSL for
    both), RDS has rds.force_ssl=1 and the URLs say sslmode=require, the chat probe calls the public
    https:// URL. Reported as notes (the Cargo files belong to the services), not failures."""
    found = []
    rules = [
        ("rdkafka", lambda fs: {"ssl", "ssl-vendored"} & fs,
         "librdkafka is built without OpenSSL, so P_KAFKA_SECURITY_PROTOCOL=sasl_ssl with SCRAM (the only way "
         "into MSK) cannot work: add `ssl` (the Dockerfile already installs libssl-dev / libssl3)"),
        ("sqlx", lambda fs: {f for f in fs if f.startswith("tls-") or f.startswith("runtime-tokio-")},
         "sqlx has no TLS backend, but RDS forces SSL (rds.force_ssl=1, sslmode=require in the URL): add "
         "`tls-rustls` (or `tls-native-tls`)"),
        ("reqwest", lambda fs: {f for f in fs if "tls" in f},
         "reqwest has no TLS backend, but the chat probe on ECS calls https://<public hostname>: add "
         "`rustls-tls` where the casino CLI uses reqwest"),
    ]
    for dep, ok, why in rules:
        fs = workspace_features(ctx, dep)
        if fs is None:
            continue
        if ok(set(fs)):
            found.append(f"{dep} ok")
        else:
            found.append(f"{dep} {fs}: see note")
            ctx.note(f"{dep} features {fs}: {why}")
    return "; ".join(found)


@check
def amp_alert_manager_definition(ctx):
    text = ctx.path("infra/terraform/modules/observability/main.tf").read_text()
    m = re.search(r'resource "aws_prometheus_alert_manager_definition" "this" \{.*?definition\s*=\s*<<-EOT\n(.*?)\n\s*EOT', text, re.S)
    assert m, "aws_prometheus_alert_manager_definition heredoc not found"
    body = m.group(1)
    body = body.replace('${aws_sns_topic.this["page"].arn}', "arn:aws:sns:eu-west-1:123456789012:casino-page")
    body = body.replace('${aws_sns_topic.this["ticket"].arn}', "arn:aws:sns:eu-west-1:123456789012:casino-ticket")
    body = body.replace("${local.region}", "eu-west-1")
    assert "${" not in body, f"unexpected interpolation left: {re.findall(r'[$][{][^}]*[}]', body)}"
    outer = yaml.safe_load(textwrap.dedent(body))
    am = yaml.safe_load(outer["alertmanager_config"])
    receivers = {r["name"]: r for r in am["receivers"]}
    for sev in ("page", "ticket"):
        topics = [c["topic_arn"] for c in receivers[sev]["sns_configs"]]
        assert topics == [f"arn:aws:sns:eu-west-1:123456789012:casino-{sev}"], f"{sev} receiver -> {topics}"
        assert any(r.get("receiver") == sev and f'severity="{sev}"' in r.get("matchers", []) for r in am["route"]["routes"])
    for r in am["receivers"]:
        assert set(r) <= {"name", "sns_configs"}, f"AMP receivers support SNS only: {r['name']} has {sorted(set(r) - {'name'})}"
    amtool = shutil.which("amtool")
    if not amtool:
        ctx.note("amtool not installed: the AMP alert manager config was only parsed, not validated")
        return "AMP definition parses; page/ticket routed to their SNS topics"
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as fh:
        fh.write(outer["alertmanager_config"])
        fh.flush()
        res = subprocess.run([amtool, "check-config", fh.name], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    return "AMP definition: amtool check-config ok; page/ticket routed to their SNS topics, SNS receivers only"


@check
def alert_rules_reference_scraped_jobs(ctx):
    files = sorted(ctx.path("alerts").glob("*.rules.yml")) if ctx.path("alerts").is_dir() else []
    prom = yaml.safe_load(ctx.path("deploy/compose/prometheus/prometheus.yml").read_text())
    jobs = {j["job_name"] for j in prom["scrape_configs"]}
    seen = set()
    for f in files:
        doc = yaml.safe_load(f.read_text()) or {}
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                for job in re.findall(r'job\s*=~?\s*"([^"]+)"', str(rule.get("expr", ""))):
                    for alt in job.split("|"):
                        if re.fullmatch(r"[\w-]+", alt):
                            seen.add(alt)
                            assert alt in jobs, f"{f.name}: rule {rule.get('alert') or rule.get('record')} uses job=\"{alt}\", not scraped (jobs: {sorted(jobs)})"
    return f"{len(files)} rule files, job labels used: {sorted(seen) or 'none'}"


@check
def alertmanager_secrets_come_from_secret_dir(ctx):
    f = ctx.path("alerts/alertmanager.yml")
    if not f.exists():
        ctx.note("alerts/alertmanager.yml does not exist yet: compose mounts it once it does")
        return "alerts/alertmanager.yml not present yet"
    cfg = yaml.safe_load(f.read_text()) or {}
    found = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(k, str) and k.endswith("_file") and isinstance(v, str) and k != "template_files":
                    found.append((k, v))
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(cfg)
    for k, v in found:
        assert v.startswith("/etc/alertmanager/secrets/"), f"{k}: {v} is not under /etc/alertmanager/secrets/"
    text = f.read_text()
    assert not re.search(r"(routing_key|service_key|api_url)\s*:\s*['\"]?[A-Za-z0-9]{20,}", text), \
        "alertmanager.yml contains what looks like a literal key"
    return f"{len(found)} secret file references, all under /etc/alertmanager/secrets/"


@check
def grafana_datasource_uids(ctx):
    prov = yaml.safe_load(ctx.path("deploy/compose/grafana/provisioning/datasources/datasources.yml").read_text())
    uids = {d["uid"]: d["type"] for d in prov["datasources"]}
    assert uids.get("prometheus") == "prometheus" and uids.get("cloudwatch") == "cloudwatch"
    amg = ctx.path("infra/terraform/grafana-dashboards/main.tf")
    if amg.exists():
        text = amg.read_text()
        for uid in ("prometheus", "cloudwatch"):
            assert re.search(rf'uid\s*=\s*"{uid}"', text), f"AMG datasource uid {uid} missing"
    dashboards = sorted(ctx.path("dashboards").glob("*.json")) if ctx.path("dashboards").is_dir() else []
    literal = set()
    for f in dashboards:
        doc = json.loads(f.read_text())

        def walk(node):
            if isinstance(node, dict):
                ds = node.get("datasource")
                if isinstance(ds, dict) and isinstance(ds.get("uid"), str) and not ds["uid"].startswith("$"):
                    literal.add((f.name, ds["uid"]))
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(doc)
        for var in doc.get("templating", {}).get("list", []):
            if var.get("type") == "datasource":
                assert var.get("query") in set(uids.values()), f"{f.name}: datasource variable of type {var.get('query')}"
    for name, uid in sorted(literal):
        assert uid in uids or uid in ("-- Grafana --", "grafana", "-- Mixed --", "-- Dashboard --"), \
            f"{name}: datasource uid {uid!r} is not provisioned ({sorted(uids)})"
    if not dashboards:
        ctx.note("dashboards/ has no JSON yet: only the provisioned datasource uids were checked")
    return f"uids {sorted(uids)}; {len(dashboards)} dashboards reference only provisioned uids"


@check
def dockerfile_targets(ctx):
    text = ctx.path("Dockerfile").read_text()
    targets = {name for _, name in re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)", text, re.M | re.I)}
    conv = conventions(ctx)
    for svc in SERVICES:
        binary = conv["services"][svc]["binary"]
        assert svc in targets, f"Dockerfile has no target {svc}"
        section = text.split(f" AS {svc}\n", 1)[1].split("\nFROM ", 1)[0]
        assert f"/usr/local/bin/{binary}" in section
        assert f'CMD ["/usr/local/bin/{binary}", "healthcheck"]' in section, f"{svc}: HEALTHCHECK"
        assert f'ENTRYPOINT ["/usr/local/bin/{binary}"]' in section
        assert re.search(r"EXPOSE\s+8080\s+9090", section)
    assert "casino" in targets and 'ENTRYPOINT ["/usr/local/bin/casino"]' in text
    runtime = text.split(" AS runtime\n", 1)[1].split("\nFROM ", 1)[0]
    assert re.search(r"^USER\s+10001:10001", runtime, re.M), "runtime stage must run as uid 10001"
    for svc, spec in compose(ctx)["services"].items():
        if isinstance(spec.get("build"), dict):
            assert spec["build"]["target"] in targets, f"compose {svc} builds unknown target"
    # The builder copies only crates/, services/ and tools/ (and .dockerignore drops the rest): files
    # embedded at compile time must live there.
    copied = [ctx.path(d).resolve() for d in ("crates", "services", "tools")]
    for f in [p for d in copied if d.is_dir() for p in d.rglob("*.rs") if "target" not in p.parts]:
        src = f.read_text(errors="replace")
        for macro, rel in re.findall(r'\b(include_str|include_bytes|migrate)!\(\s*"([^"]+)"', src):
            if macro == "migrate":
                manifest = next((p for p in f.parents if (p / "Cargo.toml").exists()), f.parent)
                target = (manifest / rel).resolve()
            else:
                target = (f.parent / rel).resolve()
            assert any(target == d or d in target.parents for d in copied), \
                f"{f.relative_to(ctx.repo)} embeds {rel}, outside what the Dockerfile copies (crates, services, tools)"
    return f"targets {sorted(targets)}; healthcheck subcommands; uid 10001"


@check
def canary_handlers_exist(ctx):
    text = ctx.path("infra/terraform/modules/observability/canaries.tf").read_text()
    handlers = re.findall(r'handler\s*=\s*"([\w-]+)\.handler"', text)
    assert handlers, "no canary handlers found"
    for h in handlers:
        hits = list(ctx.path("infra/terraform/canaries").glob(f"*/{h}.js"))
        assert hits, f"canary script {h}.js missing"
        assert "exports.handler" in hits[0].read_text()
    build = ctx.path("infra/terraform/canaries/build.sh").read_text()
    for h in handlers:
        assert f"{h}.js" in build, f"build.sh does not package {h}.js"
    obs = deep_unq(tf_variables(ctx, "infra/terraform/modules/observability/variables.tf"))
    paths = obs["health_check_paths"]["default"]
    assert set(paths) == set(SERVICES), f"health canary covers {sorted(paths)}"
    routes = deep_unq(tf_locals(ctx, "infra/terraform/locals.tf")["routes"])
    for svc, p in paths.items():
        winner = None
        for name, r in sorted(routes.items(), key=lambda kv: kv[1]["priority"]):
            if any(re.fullmatch(pat.replace(".", r"\.").replace("*", ".*").replace("?", "."), p.split("?")[0])
                   for pat in r["path_patterns"]):
                winner = name
                break
        assert winner == svc, f"health canary path {p} for {svc} is routed to {winner}"
    return f"handlers {handlers}; health canary paths route to their own service"


# -------------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[2]))
    ap.add_argument("--no-terraform-render", action="store_true")
    ap.add_argument("--only", help="comma-separated check names (default: all)")
    args = ap.parse_args()
    ctx = Ctx(Path(args.repo).resolve(), not args.no_terraform_render)
    checks = CHECKS
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - {fn.__name__ for fn in CHECKS}
        if unknown:
            ap.error(f"unknown checks {sorted(unknown)}")
        checks = [fn for fn in CHECKS if fn.__name__ in wanted]
    ok = failed = 0
    for fn in checks:
        try:
            detail = fn(ctx)
            ok += 1
            print(f"ok    {fn.__name__}: {detail}")
        except AssertionError as exc:
            failed += 1
            print(f"FAIL  {fn.__name__}: {exc or traceback.format_exc(limit=1).strip()}")
        except Exception:  # noqa: BLE001 - a crashing check is a failing check
            failed += 1
            print(f"FAIL  {fn.__name__}: {traceback.format_exc(limit=3).strip()}")
    for n in ctx.notes:
        print(f"note  {n}")
    print(f"consistency: {ok} ok, {failed} failing")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
