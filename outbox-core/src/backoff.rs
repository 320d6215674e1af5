use std::time::Duration;

/// Per-shard retry schedule: Sentry's formula, 2 s doubling, capped at 1 hour.
///
/// ```
/// use outbox::Backoff;
/// use std::time::Duration;
///
/// let b = Backoff::default();
/// assert_eq!(b.delay(1), Duration::from_secs(2));
/// assert_eq!(b.delay(2), Duration::from_secs(4));
/// assert_eq!(b.delay(30), Duration::from_secs(3600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_secs(2), cap: Duration::from_secs(3600) }
    }
}

impl Backoff {
    /// Delay before the next attempt after `failures` consecutive failures (>= 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        let millis = (self.base.as_millis() as u64).saturating_mul(factor);
        Duration::from_millis(millis).min(self.cap)
    }
}
