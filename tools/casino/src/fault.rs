//! `casino fault ...`: act on the stack `casino up` started, through its loopback control endpoint (found
//! in `<run dir>/stack.json`), and say what was done. These exist so anyone can watch alerts fire and clear.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// Arguments of `casino fault`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Run directory of the `casino up` to act on.
    #[arg(long, env = "CASINO_RUN_DIR", default_value = crate::stack::DEFAULT_RUN_DIR, global = true)]
    pub run_dir: PathBuf,
    /// The fault.
    #[command(subcommand)]
    pub fault: Fault,
}

/// Faults.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Fault {
    /// Take the embedded Kafka broker down (until `kafka-up`, or for `--for`).
    KafkaDown {
        /// Bring it back after this long (`30s`, `2m`).
        #[arg(long = "for", value_parser = parse_duration)]
        for_: Option<Duration>,
    },
    /// Bring the Kafka broker back.
    KafkaUp,
    /// Stop a process gracefully (vault, concierge, room-service, chat-probe, prometheus).
    Stop {
        /// Process name.
        service: String,
    },
    /// Start a stopped process and wait until it is ready.
    Start {
        /// Process name.
        service: String,
    },
    /// Break the ledger on purpose: move a player's balance by 1.00 without a transfer.
    CorruptBalance {
        /// Player id or email.
        player: String,
    },
    /// Make the sandbox payment providers fail a share of payments in one currency.
    PspFailure {
        /// Currency code (EUR, USD, ...).
        currency: String,
        /// Failure rate between 0 and 1 (0 restores normal behaviour).
        rate: f64,
        /// Only this provider (default: every sandbox provider).
        #[arg(long)]
        provider: Option<String>,
        /// Only deposits or only withdrawals (default: both).
        #[arg(long, value_parser = ["deposit", "withdrawal"])]
        direction: Option<String>,
    },
}

/// `30s`, `2m`, `1h` or plain seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (digits, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 30s, 2m or 1h"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{raw:?} is not a duration like 30s, 2m or 1h")),
    };
    Ok(Duration::from_secs(value * factor))
}

/// Run one fault; prints what the stack did.
pub async fn run(args: Args) -> anyhow::Result<i32> {
    let stack = crate::stack::StackInfo::load(&args.run_dir)?;
    let (path, body) = match &args.fault {
        Fault::KafkaDown { for_ } => (
            "/v1/kafka/down".to_owned(),
            json!({ "for_seconds": for_.map(|d| d.as_secs()) }),
        ),
        Fault::KafkaUp => ("/v1/kafka/up".to_owned(), json!({})),
        Fault::Stop { service } => (format!("/v1/processes/{service}/stop"), json!({})),
        Fault::Start { service } => (format!("/v1/processes/{service}/start"), json!({})),
        Fault::CorruptBalance { player } => (
            "/v1/corrupt-balance".to_owned(),
            json!({ "player": player }),
        ),
        Fault::PspFailure {
            currency,
            rate,
            provider,
            direction,
        } => {
            if !(0.0..=1.0).contains(rate) {
                bail!("the failure rate must be between 0 and 1, got {rate}");
            }
            (
                "/v1/psp-failure".to_owned(),
                json!({"currency": currency.to_uppercase(), "rate": rate, "provider": provider, "direction": direction}),
            )
        }
    };
    let response = reqwest::Client::new()
        .post(format!("{}{path}", stack.control_url))
        .json(&body)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .with_context(|| {
            format!(
                "reaching `casino up` at {} (is it still running?)",
                stack.control_url
            )
        })?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        println!("{}", answer["message"].as_str().unwrap_or("done"));
        Ok(0)
    } else {
        eprintln!(
            "casino: {}",
            answer["error"]["message"]
                .as_str()
                .map_or_else(|| format!("{status}: {answer}"), str::to_owned)
        );
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
