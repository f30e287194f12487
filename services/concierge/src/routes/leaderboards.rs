//! `GET /api/v1/leaderboards/{daily|weekly|monthly|all-time}?limit=N&around=me&at=YYYY-MM-DD`.
//!
//! Ranking: points (descending), then who reached their points first, then player id, so ties are always
//! broken the same way. Players with no points in the period are not on the board. `around=me` returns
//! the `limit` entries centred on the caller (shifted to fill the page at the bottom of the board); `me`
//! is the caller's own entry (or `null`). `at` picks the period containing that UTC date (default: today).

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
};
use casino_auth::extract::Player;
use chrono::{NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row as _;
use uuid::Uuid;

use super::{ApiState, query_map};
use crate::domain::board::Board;
use crate::error::ApiError;

/// Entries returned when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 10;
/// Most entries one request may ask for.
pub const MAX_LIMIT: i64 = 100;

/// One ranked player.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Entry {
    /// 1-based rank.
    pub rank: i64,
    /// The player.
    pub player_id: Uuid,
    /// Leaderboard points in the period.
    pub points: i64,
}

/// A leaderboard page.
#[derive(Debug, Clone, Serialize)]
pub struct BoardView {
    /// Board name.
    pub board: &'static str,
    /// First day of the period (UTC).
    pub period_start: NaiveDate,
    /// Ranked entries.
    pub entries: Vec<Entry>,
    /// The caller's entry, if they are on the board.
    pub me: Option<Entry>,
}

struct Params {
    limit: i64,
    around_me: bool,
    at: NaiveDate,
}

fn params(query: HashMap<String, String>) -> Result<Params, ApiError> {
    let mut params = Params {
        limit: DEFAULT_LIMIT,
        around_me: false,
        at: Utc::now().date_naive(),
    };
    for (key, value) in query {
        match key.as_str() {
            "limit" => {
                params.limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_parameter",
                            format!(
                                "limit must be a whole number from 1 to {MAX_LIMIT}, got {value:?}"
                            ),
                        )
                    })?
            }
            "around" => {
                if value != "me" {
                    return Err(ApiError::bad_request(
                        "invalid_parameter",
                        format!("around only accepts \"me\", got {value:?}"),
                    ));
                }
                params.around_me = true;
            }
            "at" => {
                params.at = value.parse().map_err(|_| {
                    ApiError::bad_request(
                        "invalid_parameter",
                        format!("at must be a date like 2025-03-01, got {value:?}"),
                    )
                })?
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("unknown parameter {other:?}: expected limit, around or at"),
                ));
            }
        }
    }
    Ok(params)
}

/// `GET /api/v1/leaderboards/{board}`.
pub async fn board(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Player(claims): Player,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<BoardView>, ApiError> {
    let board: Board = name.parse()?;
    let params = params(query_map(query)?)?;
    let period_start = board.period_start_of(params.at);
    let started = std::time::Instant::now();
    let view = ranking(&state, board, period_start, claims.sub, &params).await;
    if let Err(error) = &view {
        tracing::warn!(board = board.as_str(), duration_ms = started.elapsed().as_millis() as u64,
            error = %error, "leaderboard query failed");
    }
    view.map(Json)
}

async fn ranking(
    state: &ApiState,
    board: Board,
    period_start: NaiveDate,
    player: Uuid,
    params: &Params,
) -> Result<BoardView, ApiError> {
    // One snapshot for the caller's rank and the page, so both agree.
    let mut tx = state.pool().begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let me = sqlx::query(
        "SELECT m.points,
                1 + (SELECT count(*) FROM period_totals o
                      WHERE o.board = m.board AND o.period_start = m.period_start AND o.points > 0
                        AND (o.points > m.points
                             OR (o.points = m.points AND (o.reached_at < m.reached_at
                                 OR (o.reached_at = m.reached_at AND o.player_id < m.player_id))))) AS rank
           FROM period_totals m
          WHERE m.board = $1 AND m.period_start = $2 AND m.player_id = $3 AND m.points > 0",
    )
    .bind(board.as_str())
    .bind(period_start)
    .bind(player)
    .fetch_optional(&mut *tx)
    .await?
    .map(|row| {
        Ok::<_, sqlx::Error>(Entry {
            rank: row.try_get("rank")?,
            player_id: player,
            points: row.try_get("points")?,
        })
    })
    .transpose()?;
    let offset = match (&me, params.around_me) {
        (Some(me), true) => {
            // Centred on the caller, shifted to fill the page near the bottom of the board.
            let total: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM period_totals
                  WHERE board = $1 AND period_start = $2 AND points > 0",
            )
            .bind(board.as_str())
            .bind(period_start)
            .fetch_one(&mut *tx)
            .await?;
            (me.rank - 1 - (params.limit - 1) / 2)
                .min(total - params.limit)
                .max(0)
        }
        _ => 0,
    };
    let rows = sqlx::query(
        "SELECT player_id, points FROM period_totals
          WHERE board = $1 AND period_start = $2 AND points > 0
          ORDER BY points DESC, reached_at, player_id
          OFFSET $3 LIMIT $4",
    )
    .bind(board.as_str())
    .bind(period_start)
    .bind(offset)
    .bind(params.limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let entries = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            Ok(Entry {
                rank: offset + i as i64 + 1,
                player_id: row.try_get("player_id")?,
                points: row.try_get("points")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(BoardView {
        board: board.as_str(),
        period_start,
        entries,
        me,
    })
}
