//! Health alerts: when the health check finds an error-level issue, POST a
//! Slack-compatible JSON payload (`{"text": …}`) to the profile's webhook,
//! at most once per issue per interval. The dedupe is a one-slot rate limit
//! in Redis (`keys::rate_limit("alert", <issue>)`) with the interval as its
//! window, so several agents or windows never alert twice.

use std::time::Duration;

use serde::Serialize;

use super::http;
use super::ratelimit;
use crate::config::{Defaults, parse_duration};
use crate::error::Result;
use crate::metrics::{HealthIssue, HealthReport, Severity};
use crate::redis_conn::Redis;
use crate::store::Store;

/// Env var that overrides the profile's `alert_webhook` (a webhook URL is a
/// secret; this keeps it out of the profile file).
pub const WEBHOOK_ENV: &str = "CACHEDECK_ALERT_WEBHOOK";

/// How long one webhook POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how often to alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// The webhook URL (http or https).
    pub webhook: String,
    /// An issue is alerted at most once per this interval.
    pub interval: Duration,
    /// Profile name, named in the message so several deployments can share
    /// a channel.
    pub profile: String,
}

impl AlertConfig {
    /// The profile's alert settings (`CACHEDECK_ALERT_WEBHOOK` wins over
    /// `alert_webhook`); `None` when no webhook is configured.
    pub fn from_defaults(d: &Defaults, profile: &str) -> Result<Option<AlertConfig>> {
        let webhook = std::env::var(WEBHOOK_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .or_else(|| d.alert_webhook.clone().filter(|v| !v.trim().is_empty()));
        let Some(webhook) = webhook else {
            return Ok(None);
        };
        Ok(Some(AlertConfig {
            webhook: webhook.trim().to_string(),
            interval: parse_duration(&d.alert_interval)?,
            profile: profile.to_string(),
        }))
    }
}

/// What one round of alerting did, by issue key (`<code>:<datasource|redis>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertOutcome {
    /// Issues alerted now.
    pub sent: Vec<String>,
    /// Issues alerted within the interval already.
    pub suppressed: Vec<String>,
    /// Issues whose POST failed (tried again at the next round).
    pub failed: Vec<String>,
}

/// The dedupe key of an issue.
pub fn issue_key(i: &HealthIssue) -> String {
    match i.datasource_id {
        Some(ds) => format!("{}:{ds}", i.code),
        None => format!("{}:redis", i.code),
    }
}

/// The Slack-compatible payload of one issue.
pub fn payload(profile: &str, i: &HealthIssue) -> serde_json::Value {
    let what = match (&i.datasource_id, &i.datasource_name) {
        (Some(id), Some(name)) => format!("DS #{id} {name}"),
        (Some(id), None) => format!("DS #{id}"),
        _ => "Redis".to_string(),
    };
    serde_json::json!({
        "text": format!(
            ":rotating_light: cachedeck [{profile}] {what}: {} — {}",
            i.issue, i.recommendation
        )
    })
}

/// Alerts every error-level issue of `report` not alerted within the interval.
pub async fn alert(
    redis: &Redis,
    cfg: &AlertConfig,
    report: &HealthReport,
) -> Result<AlertOutcome> {
    let mut out = AlertOutcome::default();
    for issue in report
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
    {
        let key = issue_key(issue);
        let d = ratelimit::take(redis, "alert", &key, 1, cfg.interval, 1).await?;
        if !d.allowed {
            out.suppressed.push(key);
            continue;
        }
        match http::post_json(&cfg.webhook, &payload(&cfg.profile, issue), POST_TIMEOUT).await {
            Ok(_) => {
                tracing::info!("alerted {key} to {}", http::redact(&cfg.webhook));
                out.sent.push(key);
            }
            Err(e) => {
                tracing::warn!("could not alert {key}: {e}");
                // Not delivered: free the slot so the next round tries again.
                ratelimit::reset(redis, "alert", &key).await?;
                out.failed.push(key);
            }
        }
    }
    Ok(out)
}

/// Runs the health check and alerts its error-level issues.
pub async fn check_and_alert(
    redis: &Redis,
    store: &Store,
    cfg: &AlertConfig,
) -> Result<AlertOutcome> {
    let report = crate::metrics::health::check(redis, store).await?;
    alert(redis, cfg, &report).await
}
