//! Retries with exponential backoff and jitter, for errors a provider marks retryable.

use super::events::{Event, EventSink};
use super::provider::ProviderError;
use super::redact::Redactor;
use std::future::Future;
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (1: never retry).
    pub max_attempts: u32,
    /// The pause before the first retry; it doubles after each.
    pub base_delay: Duration,
    /// The longest pause.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Six tries over about half a minute: enough for throttling and IAM propagation.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed try number `attempt` (1-based): `base · 2^(attempt-1)`, capped,
    /// then "equal jitter" (a random point in its upper half), so that parallel retries do not
    /// hit the API in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_delay);
        let half = exp / 2;
        let jitter_ns = half.as_nanos() as u64;
        let jitter = if jitter_ns == 0 {
            0
        } else {
            rand::random::<u64>() % (jitter_ns + 1)
        };
        half + Duration::from_nanos(jitter)
    }
}

/// Runs `f` until it succeeds, fails with a non-retryable error, or runs out of tries.
/// Returns the result and the number of tries.
pub async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    events: &dyn EventSink,
    redactor: &Redactor,
    mut f: F,
) -> (Result<T, ProviderError>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let mut attempt = 1;
    loop {
        match f().await {
            Ok(v) => return (Ok(v), attempt),
            Err(e) if e.retryable && attempt < policy.max_attempts.max(1) => {
                let delay = policy.delay(attempt);
                events.event(&Event::Retrying {
                    what: what.to_owned(),
                    attempt,
                    delay,
                    error: redactor.scrub(&e.message).into_owned(),
                });
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(e) => return (Err(e), attempt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_capped_and_jittered() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for _ in 0..50 {
            let d1 = p.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.delay(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            assert!(p.delay(30) <= Duration::from_millis(1000));
        }
    }
}
