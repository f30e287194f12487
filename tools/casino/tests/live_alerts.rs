//! The live check of alerting and dashboards (issues 7 and 9): the platform running under `casino up`
//! with the simulator and a real Prometheus that loads the shipped rules, `for:` shortened to 10 s by
//! `alerts/tools/shorten_for.py` (expressions, windows and thresholds unchanged). One test proves that
//!
//! 1. every metric named in an alert or recording rule or a Prometheus dashboard panel has at least one
//!    series in Prometheus during the run (recorded series included; `scripts/lint_dashboards.py
//!    --metrics --include-recorded` lists them; CloudWatch panels are not Prometheus and are left out);
//! 2. every Prometheus dashboard query (`scripts/lint_dashboards.py --exprs`: Grafana's intervals and
//!    template variables substituted) is accepted by Prometheus's `/api/v1/query`;
//! 3. faults make the matching alerts fire in Prometheus's own `/api/v1/alerts`, with the expected
//!    `service` (and `currency`/`signal`) labels, a `severity`, and `summary`, `description` and
//!    `runbook_url` annotations (the runbook file exists), each checked quiet before its fault:
//!    - `casino fault stop room-service` -> `ChatDown`, `ServiceDown` and `TargetDown` for room-service;
//!    - `casino fault kafka-down` (longer than the 2-minute threshold) -> `VaultOutboxBacklog`;
//!    - `casino fault corrupt-balance <a player the test funds>` -> `VaultLedgerMismatch`;
//!    - `casino fault psp-failure EUR 1.0` and 20 EUR deposits -> `PaymentDepositSuccessRatioLow{currency="EUR"}`;
//!    - a burst of over-limit bets through Vault's signed game API, after a low limit set by staff ->
//!      `VaultAbuseSignalSpike{signal="over_limit"}`.
//!
//! The faults run concurrently where they cannot disturb each other: the room-service stop and then the
//! Kafka outage in one sequence (a Kafka outage also breaks chat, which would blur ChatDown), the ledger,
//! payment and abuse scenarios alongside. The abuse alert sets the pace: it compares the 5-minute rate
//! with `avg_over_time(...[1d])` of its own recording, evaluated once a minute, so the burst waits for
//! five zero recordings (the simulator runs with `--abusers 0`; Vault publishes every signal at 0 from
//! start) and the whole test takes 6 to 7 minutes.
//!
//! Results are collected, the stack is stopped (also when something panics: support::Up stops it when
//! dropped), and only then asserted.

mod support;

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use casino::sim::stats::Stats;
use casino::sim::vault::{Answer, Vault};
use casino::stack::StackInfo;
use reqwest::Method;
use serde_json::{Value, json};
use support::Up;

/// Every `for:` above this many seconds is shortened to it.
const FOR_SECONDS: &str = "10";
/// Where runbooks are linked (alerts/README.md).
const RUNBOOK_BASE: &str = "https://github.com/casino/platform/blob/main/alerts/runbooks/";
/// The game the test puts a low limit on (over-limit bets are refused and recorded as abuse signals).
const LIMITED_GAME: &str = "live-check-limited-table";
/// Players placing over-limit bets, and bets each: Vault locks a player at 5 signals within its
/// window, so several players make a burst (40 signals, about 0.13/s over 5 minutes; the floor is 0.05/s).
const ABUSERS: usize = 8;
const OVER_LIMIT_BETS: usize = 5;
/// EUR deposits made while the sandbox PSPs fail every EUR payment (the alert needs at least 10).
const DEPOSITS: usize = 20;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Run a repository script with python3; its stdout (panics when it fails: nothing runs yet).
fn python(script: &str, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg(repo().join(script))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("python3 {script}: {e} (python3 is needed by scripts/test)"));
    assert!(
        output.status.success(),
        "python3 {script} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Prometheus's HTTP API.
#[derive(Clone)]
struct Prometheus {
    http: reqwest::Client,
    url: String,
}

impl Prometheus {
    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value, String> {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .query(params)
            .send()
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| format!("{path}: {e}"))?;
        if status.is_success() && body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!(
                "{status} {}: {}",
                body["errorType"].as_str().unwrap_or_default(),
                body["error"].as_str().unwrap_or_default()
            ))
        }
    }

    /// An instant query's result vector.
    async fn query(&self, query: &str) -> Result<Vec<Value>, String> {
        let data = self
            .get("/api/v1/query", &[("query", query.to_owned())])
            .await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// The value of the first sample of an instant query (`None` when empty).
    async fn value(&self, query: &str) -> Result<Option<f64>, String> {
        Ok(self
            .query(query)
            .await?
            .first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse().ok()))
    }

    /// Active alerts (pending and firing) as Prometheus's rule manager sees them.
    async fn alerts(&self) -> Result<Vec<Value>, String> {
        let data = self.get("/api/v1/alerts", &[]).await?;
        Ok(data["alerts"].as_array().cloned().unwrap_or_default())
    }

    /// Every metric name with a sample since `start` (unix seconds).
    async fn names_since(&self, start: f64) -> Result<BTreeSet<String>, String> {
        let data = self
            .get(
                "/api/v1/label/__name__/values",
                &[("start", format!("{start:.3}"))],
            )
            .await?;
        Ok(data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
    }
}

fn is_alert(alert: &Value, name: &str, labels: &[(&str, &str)]) -> bool {
    alert["labels"]["alertname"] == name && labels.iter().all(|(k, v)| alert["labels"][*k] == *v)
}

/// The alerts named `name`, one line each (for failure messages).
fn listed(alerts: &[Value], name: &str) -> String {
    let lines: Vec<String> = alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == name)
        .map(|a| format!("{} {}", a["state"], a["labels"]))
        .collect();
    if lines.is_empty() {
        "not active".into()
    } else {
        lines.join("; ")
    }
}

/// A player the test registered (and logged in).
struct TestPlayer {
    id: String,
    email: String,
    token: String,
}

/// What every scenario shares.
struct Live {
    run_dir: PathBuf,
    info: StackInfo,
    prometheus: Prometheus,
    vault: Vault,
    staff_token: String,
    nonce: String,
    started: Instant,
    failures: Mutex<Vec<String>>,
}

impl Live {
    fn log(&self, message: impl AsRef<str>) {
        eprintln!(
            "live_alerts [{:>6.1}s] {}",
            self.started.elapsed().as_secs_f64(),
            message.as_ref()
        );
    }

    fn fail(&self, message: impl Into<String>) {
        let message = message.into();
        self.log(format!("FAILED: {message}"));
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message);
    }

    async fn fault(&self, args: &[&str]) -> Result<String, String> {
        let printed = Up::try_fault(&self.run_dir, args).await?;
        self.log(format!("casino fault {}: {printed}", args.join(" ")));
        Ok(printed)
    }

    async fn as_staff(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: &Value,
    ) -> Answer {
        self.vault
            .call("staff", method, path, Some(&self.staff_token), key, body)
            .await
    }

    /// Register and log in an EUR player; with `fund`, credit that many EUR by a staff adjustment.
    async fn player(&self, tag: &str, fund: Option<&str>) -> Result<TestPlayer, String> {
        let email = format!("live-{}-{tag}@casino.test", self.nonce);
        let password = format!("Live check {} key7", self.nonce);
        let registered = self.vault.register(&email, &password, "EUR").await;
        let id = registered
            .field("id")
            .ok_or_else(|| format!("registering {email}: {}", registered.describe()))?
            .to_owned();
        let login = self.vault.login(&email, &password).await;
        let token = login
            .field("access_token")
            .ok_or_else(|| format!("logging in {email}: {}", login.describe()))?
            .to_owned();
        if let Some(amount) = fund {
            let key = format!("live-{}-fund-{tag}", self.nonce);
            let answer = self
                .as_staff(
                    Method::POST,
                    "/api/v1/admin/adjustments",
                    Some(&key),
                    &json!({ "player_id": id, "currency": "EUR", "amount": amount,
                             "reason": "live alert check funding" }),
                )
                .await;
            if !answer.ok() {
                return Err(format!(
                    "funding {email}: {} {}",
                    answer.describe(),
                    answer.body
                ));
            }
        }
        Ok(TestPlayer { id, email, token })
    }

    /// Wait until `name` (with `labels`) is neither pending nor firing, and record a failure when it
    /// stays active for a minute: the fault about to be injected must be what makes it fire. (Right after
    /// start, alerts on targets not scraped yet can be pending until the next rule evaluation.)
    async fn expect_quiet(&self, name: &str, labels: &[(&str, &str)]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let last = match self.prometheus.alerts().await {
                Ok(alerts) if !alerts.iter().any(|a| is_alert(a, name, labels)) => return,
                Ok(alerts) => listed(&alerts, name),
                Err(error) => format!("reading /api/v1/alerts: {error}"),
            };
            if Instant::now() > deadline {
                return self.fail(format!(
                    "{name} {labels:?} is still active a minute before its fault: {last}"
                ));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Wait until `name` with `labels` fires, then check its labels and annotations.
    async fn expect_firing(&self, name: &str, labels: &[(&str, &str)], timeout: Duration) {
        let since = Instant::now();
        let deadline = since + timeout;
        let mut last;
        loop {
            match self.prometheus.alerts().await {
                Ok(alerts) => {
                    if let Some(alert) = alerts
                        .iter()
                        .find(|a| a["state"] == "firing" && is_alert(a, name, labels))
                    {
                        self.log(format!(
                            "{name} fires after {:.0} s: {}",
                            since.elapsed().as_secs_f64(),
                            alert["labels"]
                        ));
                        self.check_shape(name, alert);
                        return;
                    }
                    last = listed(&alerts, name);
                }
                Err(error) => last = error,
            }
            if Instant::now() > deadline {
                self.fail(format!(
                    "{name} {labels:?} did not fire within {timeout:?}; last seen: {last}"
                ));
                return;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    fn check_shape(&self, name: &str, alert: &Value) {
        let labels = &alert["labels"];
        let annotations = &alert["annotations"];
        if !matches!(labels["severity"].as_str(), Some("page" | "ticket")) {
            self.fail(format!("{name}: severity label is {}", labels["severity"]));
        }
        if labels["service"].as_str().is_none_or(str::is_empty) {
            self.fail(format!("{name}: no service label ({labels})"));
        }
        for key in ["summary", "description", "runbook_url"] {
            let text = annotations[key].as_str().unwrap_or_default();
            if text.trim().is_empty() || text.contains("{{") {
                self.fail(format!(
                    "{name}: annotation {key} is {:?}",
                    annotations[key]
                ));
            }
        }
        let runbook = format!("{RUNBOOK_BASE}{name}.md");
        if annotations["runbook_url"] != runbook.as_str() {
            self.fail(format!(
                "{name}: runbook_url is {}, expected {runbook}",
                annotations["runbook_url"]
            ));
        }
        if !repo()
            .join("alerts/runbooks")
            .join(format!("{name}.md"))
            .is_file()
        {
            self.fail(format!("{name}: alerts/runbooks/{name}.md does not exist"));
        }
    }

    /// Poll `query` until its first value satisfies `ok` (true) or `timeout` passes (false).
    async fn until_value(&self, query: &str, timeout: Duration, ok: impl Fn(f64) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(value)) = self.prometheus.value(query).await
                && ok(value)
            {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// Room-Service stopped (chat down, target down), restarted; then Kafka down past the outbox threshold.
async fn outage_scenario(live: Arc<Live>) {
    let healthy = live
        .until_value(
            r#"min(probe_success{probe="chat"}) * min(up{job="room-service"})"#,
            Duration::from_secs(120),
            |v| v == 1.0,
        )
        .await;
    if !healthy {
        live.fail("the chat probe did not succeed (or room-service was not up) before the stop");
    }
    let room = [("service", "room-service")];
    for name in ["ChatDown", "ServiceDown", "TargetDown"] {
        live.expect_quiet(name, &room).await;
    }
    match live.fault(&["stop", "room-service"]).await {
        Ok(_) => {
            live.expect_firing(
                "ChatDown",
                &[("service", "room-service"), ("probe", "chat")],
                Duration::from_secs(120),
            )
            .await;
            live.expect_firing("ServiceDown", &room, Duration::from_secs(60))
                .await;
            live.expect_firing(
                "TargetDown",
                &[("service", "room-service"), ("job", "room-service")],
                Duration::from_secs(60),
            )
            .await;
        }
        Err(error) => live.fail(error),
    }
    if let Err(error) = live.fault(&["start", "room-service"]).await {
        live.fail(error);
    }

    live.expect_quiet("VaultOutboxBacklog", &[]).await;
    match live.fault(&["kafka-down"]).await {
        Ok(_) => {
            live.expect_firing(
                "VaultOutboxBacklog",
                &[("service", "vault")],
                Duration::from_secs(330),
            )
            .await;
        }
        Err(error) => live.fail(error),
    }
    if let Err(error) = live.fault(&["kafka-up"]).await {
        live.fail(error);
    }
}

/// A player's balance moved without a transfer -> the reconciler's mismatch gauge -> the page.
async fn ledger_scenario(live: Arc<Live>) {
    live.expect_quiet("VaultLedgerMismatch", &[]).await;
    let player = match live.player("ledger", Some("100.00")).await {
        Ok(player) => player,
        Err(error) => return live.fail(error),
    };
    if let Err(error) = live.fault(&["corrupt-balance", &player.email]).await {
        return live.fail(error);
    }
    live.expect_firing(
        "VaultLedgerMismatch",
        &[("service", "vault")],
        Duration::from_secs(120),
    )
    .await;
}

/// Every EUR payment fails at the sandbox PSPs while EUR deposits keep coming -> the deposit page.
async fn payments_scenario(live: Arc<Live>) {
    let eur = [("currency", "EUR"), ("direction", "deposit")];
    live.expect_quiet("PaymentDepositSuccessRatioLow", &eur)
        .await;
    if let Err(error) = live.fault(&["psp-failure", "EUR", "1.0"]).await {
        return live.fail(error);
    }
    let player = match live.player("payments", None).await {
        Ok(player) => player,
        Err(error) => return live.fail(error),
    };
    // `increase()` counts from the first scraped sample: the deposits must fail after Prometheus has seen
    // the series (Vault publishes it at 0 from start), or a run starting fast would not count them.
    let failed = r#"vault_payments_total{direction="deposit", currency="EUR", status="failed"}"#;
    if !live
        .until_value(&format!("count({failed})"), Duration::from_secs(60), |n| {
            n >= 1.0
        })
        .await
    {
        return live.fail(format!("{failed} has no series in Prometheus"));
    }
    let providers = live.info.psp_providers.clone();
    let mut created = 0;
    let mut refused = Vec::new();
    for i in 0..DEPOSITS {
        let provider = providers.get(i % providers.len().max(1));
        let key = format!("live-{}-deposit-{i}", live.nonce);
        let answer = live
            .vault
            .call(
                "deposit",
                Method::POST,
                "/api/v1/payments/deposits",
                Some(&player.token),
                Some(&key),
                &json!({ "currency": "EUR", "amount": "50.00", "provider": provider }),
            )
            .await;
        if answer.ok() {
            created += 1;
        } else {
            refused.push(answer.describe());
        }
    }
    live.log(format!(
        "{created} EUR deposits of {} requested (refused: {refused:?})",
        player.id
    ));
    if created < 12 {
        live.fail(format!(
            "only {created} of {DEPOSITS} EUR deposits were accepted: {refused:?}"
        ));
    }
    live.expect_firing(
        "PaymentDepositSuccessRatioLow",
        &[
            ("service", "vault"),
            ("currency", "EUR"),
            ("direction", "deposit"),
        ],
        Duration::from_secs(240),
    )
    .await;
    if let Err(error) = live.fault(&["psp-failure", "EUR", "0"]).await {
        live.fail(error);
    }
}

/// A zero baseline of over-limit signals, then a burst of over-limit bets -> the abuse spike ticket.
async fn abuse_scenario(live: Arc<Live>) {
    let limit = live
        .as_staff(
            Method::PUT,
            "/api/v1/admin/limits",
            None,
            &json!({ "game_id": LIMITED_GAME, "currency": "EUR", "min_bet": "0.10", "max_bet": "1.00" }),
        )
        .await;
    if !limit.ok() {
        return live.fail(format!(
            "setting the bet limit: {} {}",
            limit.describe(),
            limit.body
        ));
    }
    let mut abusers = Vec::new();
    for i in 0..ABUSERS {
        let player = match live.player(&format!("abuser{i}"), Some("100.00")).await {
            Ok(player) => player,
            Err(error) => return live.fail(error),
        };
        let session = live
            .vault
            .call(
                "session",
                Method::POST,
                "/api/v1/games/sessions",
                Some(&player.token),
                None,
                &json!({}),
            )
            .await;
        let Some(token) = session.body["session_token"].as_str().map(str::to_owned) else {
            return live.fail(format!(
                "game session for {}: {}",
                player.email,
                session.describe()
            ));
        };
        abusers.push((player, token));
    }

    // The baseline: the recording (evaluated once a minute) must have at least 5 samples, all 0, so the
    // first recording that sees the burst is more than 5x the average (x > 5 * x / 6).
    let series = r#"signal:vault_abuse_signals:rate5m{signal="over_limit"}"#;
    let baseline = live
        .until_value(
            &format!("count_over_time({series}[1d])"),
            Duration::from_secs(540),
            |n| n >= 5.0,
        )
        .await;
    let highest = live
        .prometheus
        .value(&format!("max_over_time({series}[1d])"))
        .await;
    if !baseline {
        return live.fail(format!(
            "no baseline of 5 recordings of {series} within 9 minutes"
        ));
    }
    if highest != Ok(Some(0.0)) {
        live.fail(format!(
            "the over_limit baseline is not 0 before the burst: {highest:?}"
        ));
    }
    live.log("five zero recordings of the over_limit rate: the burst starts");
    live.expect_quiet("VaultAbuseSignalSpike", &[("signal", "over_limit")])
        .await;

    let bursts = abusers.iter().enumerate().map(|(p, (player, session))| {
        let live = live.clone();
        async move {
            let mut outcomes = Vec::new();
            for b in 0..OVER_LIMIT_BETS {
                let answer = live
                    .vault
                    .game(
                        "bet",
                        &json!({
                            "transaction_id": format!("live-{}-b{p}-{b}", live.nonce),
                            "round_id": format!("live-{}-r{p}-{b}", live.nonce),
                            "game_id": LIMITED_GAME,
                            "game_category": "table",
                            "player_id": player.id,
                            "currency": "EUR",
                            "amount": "5.00",
                            "session_token": session,
                        }),
                    )
                    .await;
                outcomes.push(answer.outcome);
            }
            outcomes
        }
    });
    let outcomes: Vec<String> = futures::future::join_all(bursts)
        .await
        .into_iter()
        .flatten()
        .collect();
    let over_limit = outcomes
        .iter()
        .filter(|o| *o == "bet_limit_exceeded")
        .count();
    live.log(format!(
        "{over_limit} of {} bets refused with bet_limit_exceeded",
        outcomes.len()
    ));
    if over_limit < 20 {
        live.fail(format!(
            "only {over_limit} over-limit refusals (abuse signals): {outcomes:?}"
        ));
    }
    live.expect_firing(
        "VaultAbuseSignalSpike",
        &[("service", "vault"), ("signal", "over_limit")],
        Duration::from_secs(180),
    )
    .await;
}

/// Every metric the rules and panels use has a series; every panel query is accepted.
async fn metrics_and_panels(live: &Live, wanted: &[String], exprs: &[Value], since: f64) {
    match live.prometheus.names_since(since).await {
        Ok(names) => {
            let missing: Vec<&String> = wanted.iter().filter(|n| !names.contains(*n)).collect();
            if missing.is_empty() {
                live.log(format!(
                    "all {} metrics used by rules and panels have series",
                    wanted.len()
                ));
            } else {
                live.fail(format!(
                    "metrics used by rules or dashboard panels without any series in Prometheus: {missing:?}"
                ));
            }
        }
        Err(error) => live.fail(format!("listing metric names: {error}")),
    }
    let mut rejected = 0;
    for panel in exprs {
        let expr = panel["expr"].as_str().unwrap_or_default();
        if let Err(error) = live.prometheus.query(expr).await {
            rejected += 1;
            live.fail(format!(
                "{} panel {:?} query {}: Prometheus rejects `{expr}`: {error}",
                panel["dashboard"].as_str().unwrap_or_default(),
                panel["panel"].as_str().unwrap_or_default(),
                panel["ref"]
            ));
        }
    }
    live.log(format!(
        "{} of {} dashboard queries accepted by /api/v1/query",
        exprs.len() - rejected,
        exprs.len()
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_fire_their_alerts_and_every_rule_and_panel_metric_exists() {
    assert!(
        on_path("prometheus"),
        "the live alert check needs Prometheus: `prometheus` is not on PATH. scripts/test installs it \
         (apt-get install prometheus, which also provides promtool); run scripts/test or install it"
    );
    // The rules as shipped, only `for:` shortened; the metric names and panel queries to check.
    let rules = std::env::temp_dir().join(format!("casino-live-rules-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&rules);
    let rules_arg = rules.display().to_string();
    python(
        "alerts/tools/shorten_for.py",
        &["alerts", &rules_arg, FOR_SECONDS],
    );
    let wanted: Vec<String> = python(
        "scripts/lint_dashboards.py",
        &["--metrics", "--include-recorded"],
    )
    .lines()
    .map(str::trim)
    .filter(|l| !l.is_empty())
    .map(str::to_owned)
    .collect();
    let exprs: Vec<Value> =
        serde_json::from_str(&python("scripts/lint_dashboards.py", &["--exprs"]))
            .expect("lint_dashboards.py --exprs prints JSON");
    assert!(
        wanted.len() > 20 && exprs.len() > 20,
        "{wanted:?} {exprs:?}"
    );

    let since = unix_now() - 5.0;
    let started = Instant::now();
    let up = Up::try_start(
        "live-alerts",
        &[
            "--rules-dir",
            &rules_arg,
            "--sim",
            "--players",
            "12",
            "--rate",
            "10",
            "--duration",
            "0",
            "--abusers",
            "0",
            "--connected",
            "0.3",
            "--seed",
            "7",
            "--quiet",
        ],
        &[],
    )
    .unwrap_or_else(|error| {
        let _ = std::fs::remove_dir_all(&rules);
        panic!("{error}")
    });
    // From here on a panic drops `up`, which stops the stack (support::Up's Drop).
    let (run_dir, info) = (up.run_dir.clone(), up.info.clone());
    eprintln!(
        "live_alerts: stack up after {:.0} s (run dir {})",
        started.elapsed().as_secs_f64(),
        run_dir.display()
    );

    let failures = run(run_dir, info, &wanted, &exprs, since).await;

    let mut up = up;
    let stopped = std::panic::catch_unwind(AssertUnwindSafe(|| up.stop())).ok();
    drop(up);
    let _ = std::fs::remove_dir_all(&rules);
    let mut failures = failures;
    match stopped {
        Some((status, _, stderr)) if !status.success() => failures.push(format!(
            "casino up did not stop cleanly ({status}):\n{stderr}"
        )),
        None => failures.push("casino up could not be stopped within 90 s".into()),
        Some(_) => {}
    }
    eprintln!(
        "live_alerts: finished after {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} problem(s):\n- {}",
        failures.len(),
        failures.join("\n- ")
    );
}

/// Everything between start and stop; never panics (a panicking scenario is a failure).
async fn run(
    run_dir: PathBuf,
    info: StackInfo,
    wanted: &[String],
    exprs: &[Value],
    since: f64,
) -> Vec<String> {
    let Some(url) = info.prometheus_url.clone() else {
        return vec!["casino up started no Prometheus (stack.json has no prometheus_url)".into()];
    };
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
    {
        Ok(http) => http,
        Err(error) => return vec![format!("HTTP client: {error}")],
    };
    let vault = match Vault::new(
        &info.vault.public_url,
        Arc::new(Stats::default()),
        info.game_provider.clone(),
    ) {
        Ok(vault) => vault,
        Err(error) => return vec![format!("Vault client: {error:#}")],
    };
    let login = vault.login(&info.admin.email, &info.admin.password).await;
    let Some(staff_token) = login.field("access_token") else {
        return vec![format!("staff login: {}", login.describe())];
    };
    let live = Arc::new(Live {
        run_dir,
        prometheus: Prometheus { http, url },
        vault,
        staff_token: staff_token.to_owned(),
        nonce: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
        started: Instant::now(),
        failures: Mutex::default(),
        info,
    });

    let scenarios = [
        ("outage", tokio::spawn(outage_scenario(live.clone()))),
        ("ledger", tokio::spawn(ledger_scenario(live.clone()))),
        ("payments", tokio::spawn(payments_scenario(live.clone()))),
        ("abuse", tokio::spawn(abuse_scenario(live.clone()))),
    ];
    for (name, task) in scenarios {
        if let Err(error) = task.await {
            live.fail(format!("the {name} scenario panicked: {error}"));
        }
    }
    metrics_and_panels(&live, wanted, exprs, since).await;
    if let Ok(alerts) = live.prometheus.alerts().await {
        let firing: BTreeSet<String> = alerts
            .iter()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                a["labels"]["alertname"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        live.log(format!("firing at the end: {firing:?}"));
    }
    live.failures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}
