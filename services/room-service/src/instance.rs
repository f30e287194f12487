//! This task's id, which names its live consumer group (`room-service-live-<id>`).
//!
//! `ROOM_SERVICE_INSTANCE_ID` when set. Otherwise, on ECS (`ECS_CONTAINER_METADATA_URI_V4` is set), the
//! task id: the last path segment of `TaskARN` in `GET ${ECS_CONTAINER_METADATA_URI_V4}/task`, so the
//! group can be traced back to the task in the console and in the logs. If the metadata cannot be read,
//! a random id (one `warn` line and `room_ecs_metadata_failures_total{reason}`); outside ECS, a random id.

use std::time::Duration;

use serde::Deserialize;

use crate::config::{InstanceIdSource, valid_instance_id};

/// The variable ECS sets in every container (task metadata endpoint version 4).
pub const ECS_METADATA_VARIABLE: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// Attempts at the metadata endpoint (it is local to the task; a failure is usually the agent starting).
const ATTEMPTS: u32 = 3;
/// Bound on one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the task id could not be read (the `reason` label of `room_ecs_metadata_failures_total`).
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// No answer (connection refused, timeout).
    #[error("task metadata endpoint unreachable: {0}")]
    Unreachable(String),
    /// An answer other than 200.
    #[error("task metadata endpoint answered {0}")]
    Status(u16),
    /// A 200 without a usable `TaskARN`.
    #[error("task metadata has no usable TaskARN: {0}")]
    Malformed(String),
}

impl MetadataError {
    /// The bounded metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            MetadataError::Unreachable(_) => "unreachable",
            MetadataError::Status(_) => "http_status",
            MetadataError::Malformed(_) => "malformed",
        }
    }
}

/// The task id in a task ARN: `arn:aws:ecs:eu-west-1:123456789012:task/casino/0f1e2d...` (or the old
/// format without the cluster, `...:task/0f1e2d...`) gives `0f1e2d...`. `None` if it is not a task ARN
/// or the id could not name a consumer group.
pub fn task_id_from_arn(arn: &str) -> Option<String> {
    // arn:<partition>:ecs:<region>:<account>:task/...
    let mut fields = arn.trim().strip_prefix("arn:")?.split(':');
    if fields.nth(1)? != "ecs" {
        return None;
    }
    let path = fields.nth(2)?.strip_prefix("task/")?;
    let id = path.rsplit('/').next()?;
    valid_instance_id(id).then(|| id.to_owned())
}

#[derive(Debug, Deserialize)]
struct TaskMetadata {
    #[serde(rename = "TaskARN")]
    task_arn: Option<String>,
}

/// Read the task id from the metadata endpoint at `metadata_uri` (one attempt).
pub async fn fetch_task_id(
    client: &reqwest::Client,
    metadata_uri: &str,
) -> Result<String, MetadataError> {
    let url = format!("{}/task", metadata_uri.trim_end_matches('/'));
    let response = client
        .get(&url)
        .timeout(ATTEMPT_TIMEOUT)
        .send()
        .await
        .map_err(|e| MetadataError::Unreachable(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(MetadataError::Status(response.status().as_u16()));
    }
    let metadata: TaskMetadata = response
        .json()
        .await
        .map_err(|e| MetadataError::Malformed(e.without_url().to_string()))?;
    let arn = metadata
        .task_arn
        .ok_or_else(|| MetadataError::Malformed("TaskARN missing".into()))?;
    task_id_from_arn(&arn).ok_or_else(|| MetadataError::Malformed(format!("TaskARN {arn:?}")))
}

/// The id this task runs with: the configured or random one as is; with [`InstanceIdSource::Ecs`], the
/// task id from the metadata endpoint, or `fallback` (logged and counted) when it cannot be read.
pub async fn resolve(source: &InstanceIdSource, fallback: &str) -> String {
    let InstanceIdSource::Ecs { metadata_uri } = source else {
        return fallback.to_owned();
    };
    let client = reqwest::Client::new();
    let mut last = None;
    for attempt in 1..=ATTEMPTS {
        match fetch_task_id(&client, metadata_uri).await {
            Ok(task_id) => {
                tracing::info!(instance_id = %task_id, "instance id is the ecs task id");
                return task_id;
            }
            Err(error) => {
                tracing::debug!(attempt, error = %error, "reading the ecs task metadata failed");
                last = Some(error);
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
    }
    if let Some(error) = last {
        crate::metrics::ecs_metadata_failure(error.reason());
        tracing::warn!(
            error = %error,
            reason = error.reason(),
            instance_id = %fallback,
            "ecs task metadata unavailable, using a random instance id"
        );
    }
    fallback.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_id_is_the_last_segment_of_the_task_arn() {
        assert_eq!(
            task_id_from_arn(
                "arn:aws:ecs:eu-west-1:123456789012:task/casino-prod/0f1e2d3c4b5a69788796a5b4c3d2e1f0"
            )
            .as_deref(),
            Some("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
        );
        // The old ARN format, without the cluster name.
        assert_eq!(
            task_id_from_arn("arn:aws:ecs:us-east-1:123456789012:task/abc123").as_deref(),
            Some("abc123")
        );
        // Other partitions.
        assert_eq!(
            task_id_from_arn("arn:aws-cn:ecs:cn-north-1:123456789012:task/c/deadbeef").as_deref(),
            Some("deadbeef")
        );
    }

    #[test]
    fn anything_else_is_not_a_task_id() {
        for arn in [
            "",
            "abc123",
            "arn:aws:ecs:eu-west-1:123456789012:service/casino/room-service",
            "arn:aws:ecs:eu-west-1:123456789012:task/casino/",
            "arn:aws:ecs:eu-west-1:123456789012:task/casino/has space",
            "arn:aws:ecs:eu-west-1:123456789012",
            "arn:aws:ec2:eu-west-1:123456789012:task/c/abc",
            &format!("arn:aws:ecs:eu-west-1:1:task/c/{}", "a".repeat(65)),
        ] {
            assert_eq!(task_id_from_arn(arn), None, "{arn:?}");
        }
    }
}
