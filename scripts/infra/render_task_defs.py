#!/usr/bin/env python3
"""Render deploy/ecs-task-defs/*.json with dummy values into a Terraform file of
aws_ecs_task_definition resources, so that checkov's ECS container-definition checks (read-only root
filesystem, privileged, secrets in environment, ...) evaluate the real container definitions. In
infra/terraform they are produced by templatefile() at plan time, which checkov cannot evaluate.

Usage: render_task_defs.py OUT_DIR
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ACCOUNT = "123456789012"


def dummy(name: str, svc: str) -> str:
    if name.endswith("_arn") or name.endswith("_arn_vault") or "secret_arn" in name:
        kind = "ssm" if "param" in name else "secretsmanager"
        if kind == "ssm":
            return f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/casino/{svc}/{name}"
        if "role" in name:
            return f"arn:aws:iam::{ACCOUNT}:role/casino-{svc}-{name}"
        return f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:casino/{svc}/{name}-AbCdEf"
    return {
        "name_prefix": "casino-production",
        "image": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/casino/{svc}:0123abc",
        "adot_image": "public.ecr.aws/aws-observability/aws-otel-collector:v0.47.0",
        "region": "eu-west-1",
        "env": "production",
        "drain_delay_seconds": "15",
        "trace_sample_ratio": "0.1",
        "log_group": f"/ecs/casino-production/{svc}",
    }.get(name, f"{name}-value")


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    blocks = []
    for f in sorted((REPO / "deploy/ecs-task-defs").glob("*.json")):
        svc = f.stem
        text = PLACEHOLDER.sub(lambda m: dummy(m.group(1), svc).replace('"', '\\"'), f.read_text())
        td = json.loads(text)
        containers = json.dumps(td["containerDefinitions"], indent=2)
        blocks.append(f'''resource "aws_ecs_task_definition" "{svc.replace('-', '_')}" {{
  family                   = "{td['family']}"
  requires_compatibilities = {json.dumps(td['requiresCompatibilities'])}
  network_mode             = "{td['networkMode']}"
  cpu                      = "{td['cpu']}"
  memory                   = "{td['memory']}"
  execution_role_arn       = "{td['executionRoleArn']}"
  task_role_arn            = "{td['taskRoleArn']}"
  container_definitions    = <<-JSON
{containers}
JSON
}}
''')
    (out / "task_definitions.tf").write_text("\n".join(blocks))
    print(f"rendered {len(blocks)} task definitions into {out / 'task_definitions.tf'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
