//! Local schedules: `rate()` fires every period from startup; `cron()` (AWS's six fields,
//! UTC) fires at its next matching minute. The event is EventBridge's "Scheduled Event", or the
//! trigger's constant `input`.

use crate::pool::Pool;
use axum::body::Bytes;
use ferry_core::schedule::{self, Schedule};
use serde_json::Value;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// When a schedule fires next, counted from now.
pub enum Timer {
    /// A fixed period.
    Every(Duration),
    /// A cron expression (the `cron` crate's seven-field form).
    Cron(Box<cron::Schedule>),
}

/// Turns an expression into a timer; `Err` says why it cannot run locally.
pub fn timer(expression: &str) -> Result<Timer, String> {
    match schedule::parse(expression)? {
        s @ Schedule::Rate { .. } => Ok(Timer::Every(Duration::from_secs(
            s.rate_seconds().unwrap_or(60),
        ))),
        Schedule::Cron(f) => {
            // AWS: min hour dom month dow year → seconds-first seven-field form; both count
            // days of the week from 1 = Sunday.
            let expr = format!("0 {} {} {} {} {} {}", f[0], f[1], f[2], f[3], f[4], f[5]);
            cron::Schedule::from_str(&expr)
                .map(|c| Timer::Cron(Box::new(c)))
                .map_err(|e| format!("`{expression}` cannot run locally ({e}); `L`, `W` and `#` are not emulated"))
        }
    }
}

impl Timer {
    /// Time until the next firing.
    pub fn next(&self) -> Option<Duration> {
        match self {
            Timer::Every(d) => Some(*d),
            Timer::Cron(c) => {
                let next = c.upcoming(chrono::Utc).next()?;
                (next - chrono::Utc::now()).to_std().ok()
            }
        }
    }
}

/// The event a schedule sends.
pub fn event(rule: &str, region: &str, input: Option<&Value>) -> Value {
    crate::records::scheduled_event(
        &uuid::Uuid::new_v4().to_string(),
        "123456789012",
        &crate::records::now_seconds(),
        region,
        &format!("arn:aws:events:{region}:123456789012:rule/{rule}"),
        input,
    )
}

/// Fires a function on its schedule until the task is dropped.
pub async fn run(
    timer: Timer,
    pool: Arc<Pool>,
    rule: String,
    region: String,
    input: Option<Value>,
) {
    while let Some(wait) = timer.next() {
        tokio::time::sleep(wait).await;
        let e = event(&rule, &region, input.as_ref());
        let pool = pool.clone();
        // Like EventBridge, a slow function does not delay the next firing.
        tokio::spawn(async move {
            let _ = pool
                .invoke(Bytes::from(e.to_string()), uuid::Uuid::new_v4().to_string())
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rates_and_crons() {
        assert!(
            matches!(timer("rate(5 minutes)").unwrap(), Timer::Every(d) if d == Duration::from_secs(300))
        );
        let t = timer("cron(0/15 * * * ? *)").unwrap();
        assert!(t.next().unwrap() <= Duration::from_secs(15 * 60));
        let t = timer("cron(0 9 ? * MON-FRI *)").unwrap();
        assert!(t.next().unwrap() <= Duration::from_secs(4 * 86400));
        assert!(timer("cron(0 18 L * ? *)").is_err());
        assert_eq!(
            event("r", "eu-west-1", None)["detail-type"],
            "Scheduled Event"
        );
        assert_eq!(
            event("r", "eu-west-1", Some(&json!({"a": 1}))),
            json!({"a": 1})
        );
    }
}
