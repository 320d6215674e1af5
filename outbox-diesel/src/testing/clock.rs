//! A clock tests move by hand.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};

use crate::drain::Clock;

/// A clock that only moves when told to, for exact backoff and lease tests.
///
/// ```
/// use std::time::Duration;
/// use outbox::testing::ManualClock;
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(clock.now() - start, chrono::Duration::seconds(2));
/// let for_the_engine: outbox::drain::Clock = clock.clock();
/// # let _ = for_the_engine;
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<NaiveDateTime>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// Starts at the current time, truncated to whole seconds.
    pub fn new() -> Self {
        let now = Utc::now().naive_utc();
        let whole = now - chrono::Duration::nanoseconds(i64::from(chrono::Timelike::nanosecond(&now)));
        ManualClock::at(whole)
    }

    /// Starts at `t`.
    pub fn at(t: NaiveDateTime) -> Self {
        ManualClock { now: Arc::new(Mutex::new(t)) }
    }

    /// The current (manual) time.
    pub fn now(&self) -> NaiveDateTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }

    /// Sets the time.
    pub fn set(&self, t: NaiveDateTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    /// The engine's view of this clock.
    pub fn clock(&self) -> Clock {
        let me = self.clone();
        Clock::from_fn(move || me.now())
    }
}
