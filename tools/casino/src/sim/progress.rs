//! The progress line on stderr: on a terminal, one line redrawn every 500 ms with a bar; otherwise (tests,
//! CI, a log file) one plain line every 5 s, so logs stay readable.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::stats::Stats;

/// What the run is doing (shown after the counters once the main loop ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Generating events.
    Running = 0,
    /// Waiting for in-flight actions.
    Finishing = 1,
    /// Waiting for pushes to settle.
    Settling = 2,
}

/// The current phase, shared with the progress task.
#[derive(Debug, Default)]
pub struct PhaseCell(AtomicU8);

impl PhaseCell {
    /// Move to `phase`.
    pub fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::Relaxed);
    }

    fn get(&self) -> Phase {
        match self.0.load(Ordering::Relaxed) {
            0 => Phase::Running,
            1 => Phase::Finishing,
            _ => Phase::Settling,
        }
    }
}

const BAR_WIDTH: usize = 20;

/// One progress line (without the bar when the duration is open-ended).
pub fn line(stats: &Stats, elapsed: Duration, duration: Option<Duration>, phase: Phase) -> String {
    let c = &stats.counters;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    // After the main loop the clock stops at the duration; the phase says what is still going on.
    let elapsed = match (phase, duration) {
        (Phase::Running, _) | (_, None) => elapsed,
        (_, Some(total)) => elapsed.min(total),
    };
    let secs = elapsed.as_secs();
    let head = match duration {
        Some(total) => {
            let done = if total.is_zero() {
                1.0
            } else {
                (elapsed.as_secs_f64() / total.as_secs_f64()).min(1.0)
            };
            let filled = (done * BAR_WIDTH as f64).round() as usize;
            format!(
                "[{}{}] {secs}s/{}s",
                "#".repeat(filled),
                "-".repeat(BAR_WIDTH - filled),
                total.as_secs()
            )
        }
        None => format!("[running] {secs}s"),
    };
    let tail = match phase {
        Phase::Running => "",
        Phase::Finishing => " (finishing)",
        Phase::Settling => " (waiting for pushes)",
    };
    format!(
        "{head} bets {} wins {} rollbacks {} refused {} errors {} chat {} pushes {}{tail}",
        n(&c.bets),
        n(&c.wins),
        n(&c.rollbacks),
        n(&c.refused),
        n(&c.errors),
        n(&c.chat),
        n(&c.pushes),
    )
}

/// Draw progress until `stop` fires, then the final line.
pub async fn run(
    stats: Arc<Stats>,
    phase: Arc<PhaseCell>,
    started: Instant,
    duration: Option<Duration>,
    stop: CancellationToken,
) {
    let terminal = std::io::stderr().is_terminal();
    let every = if terminal {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(5)
    };
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        let stopped = tokio::select! {
            _ = ticker.tick() => false,
            _ = stop.cancelled() => true,
        };
        let text = line(&stats, started.elapsed(), duration, phase.get());
        let mut err = std::io::stderr().lock();
        if terminal {
            // Clear the line and redraw in place; the last one stays.
            let _ = write!(err, "\r\x1b[2K{text}");
            if stopped {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "casino sim: {text}");
        }
        let _ = err.flush();
        if stopped {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_the_bar_and_the_counters() {
        let stats = Stats::default();
        stats.record("bet", "ok", Duration::from_millis(1));
        stats.record("bet", "player_locked", Duration::from_millis(1));
        stats.push_received();
        let text = line(
            &stats,
            Duration::from_secs(15),
            Some(Duration::from_secs(30)),
            Phase::Running,
        );
        assert_eq!(
            text,
            "[##########----------] 15s/30s bets 1 wins 0 rollbacks 0 refused 1 errors 0 chat 0 pushes 1"
        );
        let open = line(&stats, Duration::from_secs(7), None, Phase::Settling);
        assert!(open.starts_with("[running] 7s bets 1"), "{open}");
        assert!(open.ends_with("(waiting for pushes)"), "{open}");
        let late = line(
            &stats,
            Duration::from_secs(33),
            Some(Duration::from_secs(30)),
            Phase::Finishing,
        );
        assert!(late.starts_with("[####################] 30s/30s"), "{late}");
    }
}
