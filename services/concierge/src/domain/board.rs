//! Leaderboards and their UTC periods.

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};

/// A leaderboard. Its points (and the player's wagering volume) accumulate per UTC period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Board {
    /// One UTC day.
    Daily,
    /// One ISO week (Monday to Sunday, UTC).
    Weekly,
    /// One calendar month (UTC).
    Monthly,
    /// Forever.
    AllTime,
}

/// Period start of the all-time board.
pub const ALL_TIME_START: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");

/// A board name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown leaderboard {0:?}: expected daily, weekly, monthly or all-time")]
pub struct UnknownBoard(pub String);

impl Board {
    /// Every board.
    pub const ALL: [Board; 4] = [Board::Daily, Board::Weekly, Board::Monthly, Board::AllTime];

    /// Name in URLs and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Board::Daily => "daily",
            Board::Weekly => "weekly",
            Board::Monthly => "monthly",
            Board::AllTime => "all-time",
        }
    }

    /// The first day of the period containing `day`.
    pub fn period_start_of(self, day: NaiveDate) -> NaiveDate {
        match self {
            Board::Daily => day,
            Board::Weekly => {
                day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday()))
            }
            Board::Monthly => day.with_day(1).unwrap_or(day),
            Board::AllTime => ALL_TIME_START,
        }
    }

    /// The first day of the period containing the instant `at` (UTC).
    pub fn period_start(self, at: DateTime<Utc>) -> NaiveDate {
        self.period_start_of(at.date_naive())
    }
}

impl std::str::FromStr for Board {
    type Err = UnknownBoard;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Board::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| UnknownBoard(s.to_owned()))
    }
}

impl std::fmt::Display for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn periods_are_utc_days_iso_weeks_and_months() {
        // Sunday 23:59:59 UTC belongs to the week that started on Monday the 3rd.
        let t = at("2025-03-09T23:59:59Z");
        assert_eq!(Board::Daily.period_start(t), date("2025-03-09"));
        assert_eq!(Board::Weekly.period_start(t), date("2025-03-03"));
        assert_eq!(Board::Monthly.period_start(t), date("2025-03-01"));
        assert_eq!(Board::AllTime.period_start(t), ALL_TIME_START);
        // One second later: a new day and a new week, same month.
        let t = at("2025-03-10T00:00:00Z");
        assert_eq!(Board::Daily.period_start(t), date("2025-03-10"));
        assert_eq!(Board::Weekly.period_start(t), date("2025-03-10"));
        // A week across a year boundary starts in the old year.
        assert_eq!(
            Board::Weekly.period_start(at("2025-01-01T12:00:00+02:00")),
            date("2024-12-30")
        );
    }

    #[test]
    fn boards_parse_from_their_names_only() {
        for board in Board::ALL {
            assert_eq!(board.as_str().parse::<Board>().unwrap(), board);
        }
        assert!("alltime".parse::<Board>().is_err());
        assert!("Daily".parse::<Board>().is_err());
    }
}
