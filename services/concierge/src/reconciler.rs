//! The reconciler: compares, per active player and closed time window, Concierge's wagering with Vault's.
//!
//! Windows are aligned (`CONCIERGE_RECONCILE_WINDOW_SECONDS`, an hour by default) and compared once they
//! closed at least the grace period ago. Both sides count a transfer in the window of its own time: a bet
//! adds its `amount_eur` in the bet's window, a rollback subtracts the rolled-back bet's `amount_eur` in
//! the rollback's window (Vault: `wagered_eur` of `GET /internal/v1/players/{id}/wagering?from&to`).
//! The players compared in a window are those with a bet or rollback in it on either side: Concierge's
//! own, plus Vault's list (`GET /internal/v1/wagering/players?from&to`, paginated), so a player whose
//! every event Concierge missed is compared too (Concierge's side is then 0 EUR).
//!
//! Every window of the last day is compared once; windows that disagreed are compared again on every run
//! (a lagging consumer makes a window disagree until its events arrive). `concierge_reconciliation_mismatches`
//! is the number of player windows of the last day that disagree as of their latest comparison. Each
//! mismatch logs one line with `player_id`, `window`, `concierge_eur` and `vault_eur`.
//!
//! Vault is reached through the [`VaultLedger`] trait: [`HttpVault`] in the service; tests of the
//! comparison use an in-memory ledger.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use sqlx::{PgPool, Row as _};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::metrics as m;

/// How far back windows are compared.
pub const LOOKBACK: TimeDelta = TimeDelta::hours(24);
/// Concurrent requests to Vault.
const CONCURRENCY: usize = 8;
/// Players per page of Vault's active-player list.
const PLAYERS_PAGE: usize = 1000;

/// A half-open time window `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Window {
    /// Inclusive start.
    pub start: DateTime<Utc>,
    /// Exclusive end.
    pub end: DateTime<Utc>,
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.start.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.end.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }
}

/// Vault's wagering of one player in one window.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VaultWagering {
    /// Bets minus rolled-back bets, EUR.
    pub wagered_eur: Decimal,
    /// Wins, EUR.
    #[serde(default)]
    pub won_eur: Decimal,
    /// Number of bets.
    #[serde(default)]
    pub bets: i64,
}

/// Why Vault could not answer.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Not reachable, timed out, or answered 5xx.
    #[error("vault unavailable: {0}")]
    Unavailable(String),
    /// Refused our token (401/403).
    #[error("vault refused the internal token ({0})")]
    Unauthorized(u16),
    /// Answered something we cannot read.
    #[error("unexpected answer from vault: {0}")]
    Protocol(String),
}

impl VaultError {
    /// The `reason` label.
    pub fn reason(&self) -> &'static str {
        match self {
            VaultError::Unavailable(_) => "unavailable",
            VaultError::Unauthorized(_) => "unauthorized",
            VaultError::Protocol(_) => "protocol",
        }
    }
}

/// Where Vault's side of the comparison comes from.
pub trait VaultLedger: Send + Sync {
    /// Wagering of `player` in `window`; `None` if Vault does not know the player.
    fn wagering(
        &self,
        player: Uuid,
        window: Window,
    ) -> impl Future<Output = Result<Option<VaultWagering>, VaultError>> + Send;

    /// Every player with a bet or a rollback in `window` on Vault's side (all pages).
    fn active_players(
        &self,
        window: Window,
    ) -> impl Future<Output = Result<Vec<Uuid>, VaultError>> + Send;
}

/// One page of `GET /internal/v1/wagering/players`.
#[derive(Debug, Deserialize)]
struct PlayersPage {
    players: Vec<Uuid>,
    next_cursor: Option<String>,
}

/// Vault's internal HTTP API.
#[derive(Clone)]
pub struct HttpVault {
    client: reqwest::Client,
    base_url: String,
    token: String,
}

impl std::fmt::Debug for HttpVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpVault")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl HttpVault {
    /// A client for `base_url` (Vault's admin port) sending `token` as the bearer secret.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .context("building the vault http client")?,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            token: token.into(),
        })
    }
}

impl HttpVault {
    /// GET `path` with the bearer token and `query`, mapping statuses to [`VaultError`]; `Ok(None)` on 404.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<T>, VaultError> {
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(&self.token)
            .query(query)
            .send()
            .await
            .map_err(|e| VaultError::Unavailable(e.to_string()))?;
        let status = response.status();
        match status.as_u16() {
            200 => response
                .json::<T>()
                .await
                .map(Some)
                .map_err(|e| VaultError::Protocol(e.to_string())),
            404 => Ok(None),
            401 | 403 => Err(VaultError::Unauthorized(status.as_u16())),
            code if code >= 500 => Err(VaultError::Unavailable(format!("status {code}"))),
            code => Err(VaultError::Protocol(format!("status {code}"))),
        }
    }
}

fn window_query(window: Window) -> Vec<(&'static str, String)> {
    vec![
        (
            "from",
            window.start.to_rfc3339_opts(SecondsFormat::Secs, true),
        ),
        ("to", window.end.to_rfc3339_opts(SecondsFormat::Secs, true)),
    ]
}

impl VaultLedger for HttpVault {
    async fn active_players(&self, window: Window) -> Result<Vec<Uuid>, VaultError> {
        let mut players = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = window_query(window);
            query.push(("limit", PLAYERS_PAGE.to_string()));
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.clone()));
            }
            let page: PlayersPage = self
                .get_json("/internal/v1/wagering/players", &query)
                .await?
                .ok_or_else(|| {
                    VaultError::Protocol("vault has no /internal/v1/wagering/players".into())
                })?;
            players.extend(page.players);
            match page.next_cursor {
                Some(next) if cursor.as_ref() == Some(&next) => {
                    return Err(VaultError::Protocol(format!(
                        "the player list's cursor did not advance ({next})"
                    )));
                }
                Some(next) => cursor = Some(next),
                None => return Ok(players),
            }
        }
    }

    async fn wagering(
        &self,
        player: Uuid,
        window: Window,
    ) -> Result<Option<VaultWagering>, VaultError> {
        self.get_json(
            &format!("/internal/v1/players/{player}/wagering"),
            &window_query(window),
        )
        .await
    }
}

/// One player window that disagrees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The player.
    pub player_id: Uuid,
    /// The window.
    pub window: Window,
    /// Concierge's wagering (0 for a player only Vault saw in the window).
    pub concierge_eur: Decimal,
    /// Vault's wagering (`None`: Vault does not know the player).
    pub vault_eur: Option<Decimal>,
}

/// The aligned windows of length `length` that closed at least `grace` before `now`, within
/// [`LOOKBACK`], oldest first.
pub fn closed_windows(now: DateTime<Utc>, length: Duration, grace: Duration) -> Vec<Window> {
    let length = TimeDelta::from_std(length).unwrap_or(TimeDelta::hours(1));
    let grace = TimeDelta::from_std(grace).unwrap_or_default();
    let step = length.num_seconds().max(1);
    let latest_end = now - grace;
    let end_secs = latest_end.timestamp().div_euclid(step) * step;
    let mut windows = Vec::new();
    let mut end = DateTime::from_timestamp(end_secs, 0).unwrap_or(latest_end);
    while end - length >= now - LOOKBACK {
        windows.push(Window {
            start: end - length,
            end,
        });
        end -= length;
    }
    windows.reverse();
    windows
}

/// The players to compare in `window`: Concierge's (with its wagering) plus those only Vault saw (with
/// 0 EUR on Concierge's side, so any wagering Vault has for them is a mismatch).
pub async fn players_to_compare<V: VaultLedger>(
    vault: &V,
    window: Window,
    mut concierge: BTreeMap<Uuid, Decimal>,
) -> Result<BTreeMap<Uuid, Decimal>, VaultError> {
    for player in vault.active_players(window).await? {
        concierge.entry(player).or_insert(Decimal::ZERO);
    }
    Ok(concierge)
}

/// Compare Concierge's wagering per player (`concierge`) with Vault's, in `window`.
pub async fn compare<V: VaultLedger>(
    vault: &V,
    window: Window,
    concierge: &BTreeMap<Uuid, Decimal>,
) -> Result<Vec<Mismatch>, VaultError> {
    let players: Vec<(Uuid, Decimal)> = concierge.iter().map(|(p, w)| (*p, *w)).collect();
    let mut mismatches = Vec::new();
    for chunk in players.chunks(CONCURRENCY) {
        let answers = futures::future::join_all(
            chunk
                .iter()
                .map(|(player, _)| vault.wagering(*player, window)),
        )
        .await;
        for ((player_id, concierge_eur), answer) in chunk.iter().zip(answers) {
            let vault_eur = answer?.map(|w| w.wagered_eur);
            if vault_eur != Some(*concierge_eur) {
                mismatches.push(Mismatch {
                    player_id: *player_id,
                    window,
                    concierge_eur: *concierge_eur,
                    vault_eur,
                });
            }
        }
    }
    mismatches.sort_by_key(|m| m.player_id);
    Ok(mismatches)
}

/// Concierge's wagering per active player in `window` (bets by bet time, minus rolled-back bets by
/// rollback time; bets voided because their rollback came first count nowhere).
pub async fn concierge_wagering(
    pool: &PgPool,
    window: Window,
) -> anyhow::Result<BTreeMap<Uuid, Decimal>> {
    let rows = sqlx::query(
        "SELECT player_id, sum(amount) AS wagered FROM (
             SELECT player_id, amount_eur AS amount FROM awards
              WHERE occurred_at >= $1 AND occurred_at < $2 AND NOT voided
             UNION ALL
             SELECT player_id, -amount_eur FROM awards
              WHERE rolled_back_at >= $1 AND rolled_back_at < $2 AND NOT voided
         ) w GROUP BY player_id",
    )
    .bind(window.start)
    .bind(window.end)
    .fetch_all(pool)
    .await
    .context("summing concierge's wagering")?;
    rows.into_iter()
        .map(|row| Ok((row.try_get("player_id")?, row.try_get("wagered")?)))
        .collect()
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Windows compared in this run.
    pub windows: usize,
    /// Player windows compared in this run.
    pub players: usize,
    /// Mismatches found in this run.
    pub mismatches: Vec<Mismatch>,
    /// Player windows of the last day that disagree as of their latest comparison (the gauge).
    pub open_mismatches: i64,
}

/// Compare every due window once (see the module documentation) and update the gauge.
pub async fn run_once<V: VaultLedger>(
    pool: &PgPool,
    vault: &V,
    now: DateTime<Utc>,
    length: Duration,
    grace: Duration,
) -> anyhow::Result<ReconcileReport> {
    let done: BTreeMap<DateTime<Utc>, i32> = sqlx::query(
        "SELECT window_start, mismatches FROM reconciliation_windows WHERE window_start >= $1",
    )
    .bind(now - LOOKBACK - TimeDelta::hours(1))
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| Ok((row.try_get("window_start")?, row.try_get("mismatches")?)))
    .collect::<Result<_, sqlx::Error>>()?;
    let mut report = ReconcileReport::default();
    for window in closed_windows(now, length, grace) {
        if done.get(&window.start).is_some_and(|m| *m == 0) {
            continue;
        }
        let ours = concierge_wagering(pool, window).await?;
        let compared = async {
            let ours = players_to_compare(vault, window, ours).await?;
            let mismatches = compare(vault, window, &ours).await?;
            Ok::<_, VaultError>((ours, mismatches))
        };
        let (ours, mismatches) = match compared.await {
            Ok(compared) => compared,
            Err(error) => {
                metrics::counter!(m::RECONCILIATION_ERRORS, "reason" => error.reason())
                    .increment(1);
                tracing::warn!(window = %window, error = %error, "reconciliation with vault failed, will retry");
                return Err(error.into());
            }
        };
        metrics::counter!(m::RECONCILIATION_CHECKS).increment(ours.len() as u64);
        for mismatch in &mismatches {
            tracing::warn!(player_id = %mismatch.player_id, window = %window,
                concierge_eur = %mismatch.concierge_eur,
                vault_eur = mismatch.vault_eur.map(|v| v.to_string()).unwrap_or_else(|| "unknown player".into()),
                "reconciliation mismatch: concierge's wagering differs from vault's");
        }
        sqlx::query(
            "INSERT INTO reconciliation_windows (window_start, window_end, players, mismatches)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (window_start) DO UPDATE
                SET players = excluded.players, mismatches = excluded.mismatches, finished_at = now()",
        )
        .bind(window.start)
        .bind(window.end)
        .bind(ours.len() as i32)
        .bind(mismatches.len() as i32)
        .execute(pool)
        .await?;
        report.windows += 1;
        report.players += ours.len();
        report.mismatches.extend(mismatches);
    }
    report.open_mismatches = sqlx::query_scalar(
        "SELECT coalesce(sum(mismatches), 0)::bigint FROM reconciliation_windows WHERE window_start >= $1",
    )
    .bind(now - LOOKBACK)
    .fetch_one(pool)
    .await?;
    metrics::gauge!(m::RECONCILIATION_MISMATCHES).set(report.open_mismatches as f64);
    Ok(report)
}

/// Reconcile every `interval` until `stop`.
pub async fn run<V: VaultLedger>(
    pool: PgPool,
    vault: V,
    interval: Duration,
    length: Duration,
    grace: Duration,
    stop: CancellationToken,
) {
    loop {
        match run_once(&pool, &vault, Utc::now(), length, grace).await {
            Ok(report) => tracing::debug!(
                windows = report.windows,
                players = report.players,
                mismatches = report.mismatches.len(),
                open_mismatches = report.open_mismatches,
                "reconciliation run finished"
            ),
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "reconciliation run failed")
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Vault's side, kept in memory: the transfers of each player, each in the window of its own time.
    /// Each player's transfers: (time, EUR).
    type Transfers = HashMap<Uuid, Vec<(DateTime<Utc>, Decimal)>>;

    #[derive(Default)]
    struct Ledger {
        transfers: Mutex<Transfers>,
        down: bool,
    }

    impl Ledger {
        fn bet(&self, player: Uuid, at: &str, amount: &str) {
            self.transfers
                .lock()
                .unwrap()
                .entry(player)
                .or_default()
                .push((at.parse().unwrap(), amount.parse().unwrap()));
        }
    }

    impl VaultLedger for Ledger {
        async fn wagering(
            &self,
            player: Uuid,
            window: Window,
        ) -> Result<Option<VaultWagering>, VaultError> {
            if self.down {
                return Err(VaultError::Unavailable("connection refused".into()));
            }
            let transfers = self.transfers.lock().unwrap();
            Ok(transfers.get(&player).map(|list| VaultWagering {
                wagered_eur: list
                    .iter()
                    .filter(|(at, _)| *at >= window.start && *at < window.end)
                    .map(|(_, amount)| *amount)
                    .sum(),
                won_eur: Decimal::ZERO,
                bets: 0,
            }))
        }

        async fn active_players(&self, window: Window) -> Result<Vec<Uuid>, VaultError> {
            if self.down {
                return Err(VaultError::Unavailable("connection refused".into()));
            }
            let transfers = self.transfers.lock().unwrap();
            let mut players: Vec<Uuid> = transfers
                .iter()
                .filter(|(_, list)| {
                    list.iter()
                        .any(|(at, _)| *at >= window.start && *at < window.end)
                })
                .map(|(player, _)| *player)
                .collect();
            players.sort();
            Ok(players)
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn window() -> Window {
        Window {
            start: at("2025-03-01T10:00:00Z"),
            end: at("2025-03-01T11:00:00Z"),
        }
    }

    #[tokio::test]
    async fn equal_totals_give_no_mismatch_and_a_missed_event_gives_one() {
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let vault = Ledger::default();
        vault.bet(alice, "2025-03-01T10:05:00Z", "10.50");
        vault.bet(alice, "2025-03-01T10:06:00Z", "4.50");
        vault.bet(bob, "2025-03-01T10:07:00Z", "100");
        // Outside the window: not counted by either side.
        vault.bet(bob, "2025-03-01T11:00:00Z", "7");
        let mut ours: BTreeMap<Uuid, Decimal> = [
            (alice, "15.00".parse().unwrap()),
            (bob, "100".parse().unwrap()),
        ]
        .into_iter()
        .collect();
        assert_eq!(compare(&vault, window(), &ours).await.unwrap(), vec![]);

        // Concierge missed Alice's 4.50 bet.
        ours.insert(alice, "10.50".parse().unwrap());
        let mismatches = compare(&vault, window(), &ours).await.unwrap();
        assert_eq!(
            mismatches,
            vec![Mismatch {
                player_id: alice,
                window: window(),
                concierge_eur: "10.50".parse().unwrap(),
                vault_eur: Some("15.00".parse().unwrap()),
            }]
        );
    }

    #[tokio::test]
    async fn a_player_only_vault_saw_is_compared_with_zero_and_mismatches() {
        let (alice, ghost) = (Uuid::now_v7(), Uuid::now_v7());
        let vault = Ledger::default();
        vault.bet(alice, "2025-03-01T10:05:00Z", "10");
        vault.bet(ghost, "2025-03-01T10:10:00Z", "25");
        // Concierge saw Alice's bet but none of the ghost's events.
        let ours: BTreeMap<Uuid, Decimal> = [(alice, "10".parse().unwrap())].into_iter().collect();
        assert_eq!(compare(&vault, window(), &ours).await.unwrap(), vec![]);
        let all = players_to_compare(&vault, window(), ours).await.unwrap();
        assert_eq!(all.get(&ghost), Some(&Decimal::ZERO));
        assert_eq!(
            compare(&vault, window(), &all).await.unwrap(),
            vec![Mismatch {
                player_id: ghost,
                window: window(),
                concierge_eur: Decimal::ZERO,
                vault_eur: Some("25".parse().unwrap()),
            }]
        );
        let down = Ledger {
            down: true,
            ..Ledger::default()
        };
        let error = players_to_compare(&down, window(), BTreeMap::new())
            .await
            .unwrap_err();
        assert_eq!(error.reason(), "unavailable");
    }

    #[tokio::test]
    async fn a_player_vault_does_not_know_is_a_mismatch_and_vault_down_is_an_error() {
        let stranger = Uuid::now_v7();
        let ours: BTreeMap<Uuid, Decimal> = [(stranger, Decimal::ONE)].into_iter().collect();
        let mismatches = compare(&Ledger::default(), window(), &ours).await.unwrap();
        assert_eq!(mismatches[0].vault_eur, None);
        let down = Ledger {
            down: true,
            ..Ledger::default()
        };
        let error = compare(&down, window(), &ours).await.unwrap_err();
        assert_eq!(error.reason(), "unavailable");
    }

    #[test]
    fn closed_windows_are_aligned_past_the_grace_period_and_within_a_day() {
        let windows = closed_windows(
            at("2025-03-01T10:04:00Z"),
            Duration::from_secs(3600),
            Duration::from_secs(300),
        );
        // 10:04 minus 5 minutes is 09:59: the 09:00-10:00 window is not closed long enough yet.
        assert_eq!(
            windows.last().unwrap(),
            &Window {
                start: at("2025-03-01T08:00:00Z"),
                end: at("2025-03-01T09:00:00Z")
            }
        );
        assert!(windows.len() <= 24);
        assert!(
            windows
                .iter()
                .all(|w| w.start >= at("2025-02-28T10:04:00Z"))
        );
        assert!(windows.windows(2).all(|p| p[0].end == p[1].start));
        let later = closed_windows(
            at("2025-03-01T10:05:00Z"),
            Duration::from_secs(3600),
            Duration::from_secs(300),
        );
        assert_eq!(later.last().unwrap().end, at("2025-03-01T10:00:00Z"));
    }
}
