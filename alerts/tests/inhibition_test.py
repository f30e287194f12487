#!/usr/bin/env python3
"""Inhibition test for alerts/alertmanager.yml against a real Alertmanager on loopback.

`amtool check-config` validates syntax and `amtool config routes test` routing, but neither
evaluates inhibit_rules. This starts the installed Alertmanager (Debian: prometheus-alertmanager)
on a free 127.0.0.1 port with a copy of the configuration whose secret files are throwaway
placeholders in a temporary directory and whose receivers cannot reach anything, posts a set of
alerts through the v2 API, and checks which of them Alertmanager reports as inhibited.
Python standard library only; the process is always stopped.
"""

import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "alertmanager.yml")

# (labels, expected to be inhibited?)
CASES = [
    # vault is down: its symptoms are silenced, other services' alerts are not.
    ({"alertname": "ServiceDown", "severity": "page", "service": "vault"}, False),
    ({"alertname": "GameApiErrorRatioHigh", "severity": "page", "service": "vault", "operation": "bet"}, True),
    ({"alertname": "TargetDown", "severity": "ticket", "service": "vault", "instance": "vault:9090"}, True),
    ({"alertname": "ServiceNotReady", "severity": "page", "service": "vault"}, True),
    ({"alertname": "GameApiErrorBudgetBurnFast", "severity": "page", "service": "vault",
      "slo": "game-api-availability"}, True),
    ({"alertname": "ChatDown", "severity": "page", "service": "room-service", "probe": "chat"}, False),
    ({"alertname": "Watchdog", "severity": "ticket", "service": "alerting"}, False),
    # concierge is up but not ready: its symptoms are silenced.
    ({"alertname": "ServiceNotReady", "severity": "page", "service": "concierge"}, False),
    ({"alertname": "KafkaDlqReceiving", "severity": "ticket", "service": "concierge",
      "topic": "vault.transactions.v1"}, True),
    # the page form silences the ticket form of the same condition only.
    ({"alertname": "KafkaConsumerLagCritical", "severity": "page", "service": "room-service",
      "topic": "vault.transactions.v1"}, False),
    ({"alertname": "KafkaConsumerLagHigh", "severity": "ticket", "service": "room-service",
      "topic": "vault.transactions.v1"}, True),
    ({"alertname": "KafkaConsumerLagHigh", "severity": "ticket", "service": "room-service",
      "topic": "concierge.rewards.v1"}, False),
    ({"alertname": "RoomDeliveryLatencyBudgetBurnFast", "severity": "page", "service": "room-service",
      "slo": "room-delivery-latency"}, False),
    ({"alertname": "RoomDeliveryLatencyBudgetBurnSlow", "severity": "ticket", "service": "room-service",
      "slo": "room-delivery-latency"}, True),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url, data=None):
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"},
                                 method="POST" if body else "GET")
    with urllib.request.urlopen(req, timeout=5) as resp:
        text = resp.read().decode()
        return json.loads(text) if text.strip().startswith(("[", "{")) else text


def main():
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not binary:
        print("inhibition_test: no alertmanager binary (install prometheus-alertmanager)", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="am-inhibition-")
    proc = None
    try:
        secrets = os.path.join(tmp, "secrets")
        os.makedirs(secrets)
        for name, value in (("pagerduty_routing_key", "placeholder"),
                            ("slack_webhook_url", "http://127.0.0.1:9/slack"),
                            ("deadman_token", "placeholder")):
            with open(os.path.join(secrets, name), "w") as fh:
                fh.write(value + "\n")
        with open(CONFIG, encoding="utf-8") as fh:
            config = fh.read()
        config = config.replace("/etc/alertmanager/secrets", secrets)
        config = config.replace("https://deadman.casino.internal/ping/alertmanager", "http://127.0.0.1:9/ping")
        cfg_path = os.path.join(tmp, "alertmanager.yml")
        with open(cfg_path, "w", encoding="utf-8") as fh:
            fh.write(config)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = open(os.path.join(tmp, "alertmanager.log"), "w")
        proc = subprocess.Popen([binary, f"--config.file={cfg_path}", f"--storage.path={tmp}/data",
                                 f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while True:
            try:
                request(f"{base}/-/ready")
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    log.flush()
                    with open(os.path.join(tmp, "alertmanager.log")) as fh:
                        print(fh.read()[-2000:], file=sys.stderr)
                    print("inhibition_test: alertmanager did not become ready", file=sys.stderr)
                    return 1
                time.sleep(0.2)

        now = datetime.datetime.now(datetime.timezone.utc)
        starts = (now - datetime.timedelta(minutes=1)).isoformat()
        ends = (now + datetime.timedelta(hours=1)).isoformat()
        request(f"{base}/api/v2/alerts", [
            {"labels": labels, "annotations": {"summary": "inhibition test"},
             "startsAt": starts, "endsAt": ends} for labels, _ in CASES])

        def key(labels):
            return tuple(sorted(labels.items()))

        want = {key(labels): inhibited for labels, inhibited in CASES}
        got = {}
        deadline = time.time() + 15
        while time.time() < deadline:
            alerts = request(f"{base}/api/v2/alerts?active=true&inhibited=true&silenced=true")
            got = {key(a["labels"]): bool(a["status"]["inhibitedBy"]) for a in alerts}
            if got == want:
                break
            time.sleep(0.5)
        failures = 0
        for labels, inhibited in CASES:
            actual = got.get(key(labels))
            ok = actual == inhibited
            failures += not ok
            what = "inhibited" if inhibited else "active"
            name = labels["alertname"] + "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())
                                                        if k != "alertname") + "}"
            print(f"{'ok  ' if ok else 'FAIL'} {name}: expected {what}, got "
                  f"{'missing' if actual is None else ('inhibited' if actual else 'active')}")
        print(f"inhibition_test: {len(CASES) - failures} passed, {failures} failed")
        return 1 if failures else 0
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
