use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// Typed values a worker lends to its receivers: a pool for the other silo, an
/// HTTP client, a search index handle. One value per type.
///
/// ```
/// use outbox::Resources;
///
/// struct ControlDb(&'static str);
/// let mut resources = Resources::default();
/// resources.insert(ControlDb("control"));
/// assert_eq!(resources.get::<ControlDb>().unwrap().0, "control");
/// assert!(resources.get::<String>().is_none());
/// ```
#[derive(Clone, Default)]
pub struct Resources {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Resources {
    /// Adds (or replaces) the value of type `T`.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one was added.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.values.get(&TypeId::of::<T>()).and_then(|v| v.downcast_ref())
    }

    /// How many values are held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources").field("len", &self.values.len()).finish()
    }
}
