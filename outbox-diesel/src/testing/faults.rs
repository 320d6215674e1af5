//! Receivers that fail on demand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use outbox_core::{OutboxCategory, ReceiverError};

/// A fault switch per category. Register a clone as a resource of the worker
/// or drainer; the engine then fails that category's deliveries on demand.
///
/// ```
/// use outbox::drain::Drainer;
/// use outbox::testing::Faults;
///
/// let faults = Faults::new();
/// let drainer = Drainer::builder().resource(faults.clone()).build()?;
/// faults.fail(7, Some(2));        // the next 2 deliveries of category 7 fail before the receiver runs
/// faults.fail_after(8, None);     // category 8: the receiver runs, then the delivery fails
/// faults.clear(7);
/// # let _ = drainer;
/// # Ok::<(), outbox::drain::DrainError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Faults {
    switches: Arc<Mutex<HashMap<i32, Fault>>>,
}

#[derive(Debug, Clone)]
struct Fault {
    remaining: Option<u32>,
    after: bool,
}

impl Faults {
    /// No faults.
    pub fn new() -> Self {
        Faults::default()
    }

    /// Fails deliveries of `category` before its receiver runs: `times` times,
    /// or until cleared when `None`.
    pub fn fail(&self, category: i32, times: Option<u32>) {
        self.set(category, Fault { remaining: times, after: false });
    }

    /// Lets the receiver of `category` run, then fails the delivery (its effect
    /// happened; for a transactional category it is rolled back).
    pub fn fail_after(&self, category: i32, times: Option<u32>) {
        self.set(category, Fault { remaining: times, after: true });
    }

    /// [`Faults::fail`] with a typed category.
    pub fn fail_category<K: OutboxCategory>(&self, category: K, times: Option<u32>) {
        self.fail(category.id(), times);
    }

    /// Removes the fault of `category`.
    pub fn clear(&self, category: i32) {
        self.lock().remove(&category);
    }

    /// Removes every fault.
    pub fn clear_all(&self) {
        self.lock().clear();
    }

    fn set(&self, category: i32, fault: Fault) {
        self.lock().insert(category, fault);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Fault>> {
        self.switches.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, category: i32, after: bool) -> Option<ReceiverError> {
        let mut switches = self.lock();
        let fault = switches.get_mut(&category).filter(|f| f.after == after)?;
        match &mut fault.remaining {
            Some(0) => return None,
            Some(n) => *n -= 1,
            None => {}
        }
        Some(ReceiverError::msg(format!("injected fault for category {category}")))
    }

    pub(crate) fn before(&self, category: i32) -> Option<ReceiverError> {
        self.take(category, false)
    }

    pub(crate) fn after(&self, category: i32) -> Option<ReceiverError> {
        self.take(category, true)
    }
}
