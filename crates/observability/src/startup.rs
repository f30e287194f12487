//! What services share while they start: waiting for a dependency that is still coming up.
//!
//! In containers the database often starts next to the service (docker-compose, `casino up`, a fresh RDS
//! failover), so a service retries for a while before it gives up with the cause.

use std::future::Future;
use std::time::{Duration, Instant};

/// Pause between two attempts of [`retry_for`].
pub const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Run `attempt` until it succeeds, every [`RETRY_PAUSE`], for at most `timeout` counted from the first
/// try; past that, return the last error.
///
/// `on_retry` sees each failure that will be retried, with its attempt number (from 1). It logs, not this
/// function, so each service's line keeps its own message, fields and `target`.
pub async fn retry_for<T, E, Fut>(
    timeout: Duration,
    mut attempt: impl FnMut() -> Fut,
    mut on_retry: impl FnMut(u32, &E),
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if started.elapsed() >= timeout {
            return Err(error);
        }
        on_retry(attempts, &error);
        // Not held across the pause: the error type need not be `Send`.
        drop(error);
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Wait until `pool` hands out a connection, for at most `timeout` (the database may still be starting);
/// past that, fail with "the `service` database was not reachable within N s" and the cause.
pub async fn wait_for_database(
    pool: &sqlx::PgPool,
    timeout: Duration,
    service: &str,
) -> anyhow::Result<()> {
    retry_for(
        timeout,
        || pool.acquire(),
        |attempt, error| {
            tracing::warn!(attempt, error = %error, "database not reachable yet, retrying");
        },
    )
    .await
    .map(drop)
    .map_err(|error| {
        anyhow::Error::new(error).context(format!(
            "the {service} database was not reachable within {} s",
            timeout.as_secs()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dependency_that_comes_up_is_retried_until_it_answers() {
        let mut calls = 0;
        let mut retried = Vec::new();
        let result = retry_for(
            Duration::from_secs(30),
            || {
                calls += 1;
                let outcome = if calls < 2 { Err("refused") } else { Ok(calls) };
                async move { outcome }
            },
            |attempt, error: &&str| retried.push((attempt, error.to_string())),
        )
        .await;
        assert_eq!(result, Ok(2));
        assert_eq!(retried, vec![(1, "refused".to_owned())]);
    }

    #[tokio::test]
    async fn past_the_timeout_the_last_error_is_returned_without_another_retry() {
        let mut retried = 0;
        let result: Result<(), &str> = retry_for(
            Duration::ZERO,
            || async { Err("refused") },
            |_, _| retried += 1,
        )
        .await;
        assert_eq!(result, Err("refused"));
        assert_eq!(retried, 0);
    }
}
