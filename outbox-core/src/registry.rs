use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::OnceLock;

use crate::{CategoryInfo, CategoryRegistration, Direction, ReceiverRegistration, ScopeInfo, ScopeRegistration};

/// Every scope, category and receiver linked into this binary.
///
/// Registrations are collected with `inventory` at link time, so a crate of
/// models only counts if it is linked: when nothing else in your binary names it,
/// add `use my_models as _;` to `main.rs`.
///
/// ```
/// let registry = outbox::registry();
/// // Call this at start-up (workers do it for you) and in one #[test].
/// registry.validate().expect("outbox registry is valid");
/// ```
pub struct Registry {
    scopes: Vec<&'static ScopeInfo>,
    categories: Vec<&'static CategoryInfo>,
    receivers: Vec<&'static ReceiverRegistration>,
    category_by_id: HashMap<i32, &'static CategoryInfo>,
    receiver_by_key: HashMap<(i32, Direction), &'static ReceiverRegistration>,
}

/// The registry of this binary, built on first use.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        Registry::from_parts(
            inventory::iter::<ScopeRegistration>.into_iter().map(|r| r.0).collect(),
            inventory::iter::<CategoryRegistration>.into_iter().map(|r| r.0).collect(),
            inventory::iter::<ReceiverRegistration>.into_iter().collect(),
        )
    })
}

/// One problem `Registry::validate` found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryProblem {
    /// Two declarations use one scope id.
    #[error("scope id {id} is declared twice: `{first}` and `{second}`; give one of them a new id")]
    DuplicateScope {
        /// The id.
        id: i32,
        /// First declaration (module::Variant).
        first: String,
        /// Second declaration.
        second: String,
    },
    /// Two declarations (usually in two crates) use one category id.
    #[error("category id {id} is declared twice: `{first}` and `{second}`; declare every category in one enum, or give one a new id")]
    DuplicateCategory {
        /// The id.
        id: i32,
        /// First declaration (module::Variant).
        first: String,
        /// Second declaration.
        second: String,
    },
    /// Two receivers for one (category, direction).
    #[error("category `{category}` has two {direction} receivers: `{first}` (in {first_module}) and `{second}` (in {second_module}); keep one")]
    DuplicateReceiver {
        /// Category name (or id when undeclared).
        category: String,
        /// Direction.
        direction: Direction,
        /// First receiver.
        first: String,
        /// Where the first was registered.
        first_module: String,
        /// Second receiver.
        second: String,
        /// Where the second was registered.
        second_module: String,
    },
    /// A live category nobody receives: its rows would pile up.
    #[error("category `{category}` (id {id}) has no receiver; add `region = path` or `control = path` to its #[category], derive a replicated model for it, or mark it `discard`")]
    MissingReceiver {
        /// Category name.
        category: String,
        /// Category id.
        id: i32,
    },
    /// A receiver for a category id nobody declared (or retired).
    #[error("receiver `{receiver}` (in {module}) is registered for category id {id}, which is {why}")]
    ReceiverForUnusableCategory {
        /// Receiver name.
        receiver: String,
        /// Where it was registered.
        module: String,
        /// Category id.
        id: i32,
        /// "not declared" or "retired".
        why: &'static str,
    },
    /// A discard category that still has a receiver: one of the two is a mistake.
    #[error("category `{category}` is marked `discard` but has the receiver `{receiver}`; remove one")]
    DiscardWithReceiver {
        /// Category name.
        category: String,
        /// Receiver name.
        receiver: String,
    },
}

/// Every problem `Registry::validate` found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the outbox registry has {} problem(s):\n{}", problems.len(), list(problems))]
pub struct RegistryError {
    /// The problems, in a stable order.
    pub problems: Vec<RegistryProblem>,
}

fn list(problems: &[RegistryProblem]) -> String {
    problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
}

impl Registry {
    /// Builds a registry from explicit parts (tests and tools; the binary's own
    /// registry comes from [`registry()`]).
    pub fn from_parts(
        mut scopes: Vec<&'static ScopeInfo>,
        mut categories: Vec<&'static CategoryInfo>,
        mut receivers: Vec<&'static ReceiverRegistration>,
    ) -> Self {
        // inventory's order is unspecified; sort so reports and errors are stable.
        scopes.sort_by_key(|s| (s.id, s.declared_in, s.name));
        categories.sort_by_key(|c| (c.id, c.declared_in, c.name));
        receivers.sort_by_key(|r| (r.category, r.direction(), r.registered_in, r.name));
        let mut category_by_id = HashMap::new();
        for c in &categories {
            category_by_id.entry(c.id).or_insert(*c);
        }
        let mut receiver_by_key = HashMap::new();
        for r in &receivers {
            receiver_by_key.entry((r.category, r.direction())).or_insert(*r);
        }
        Registry { scopes, categories, receivers, category_by_id, receiver_by_key }
    }

    /// Every declared scope, by id.
    pub fn scopes(&self) -> &[&'static ScopeInfo] {
        &self.scopes
    }

    /// Every declared category (retired ones included), by id.
    pub fn categories(&self) -> &[&'static CategoryInfo] {
        &self.categories
    }

    /// Every registered receiver.
    pub fn receivers(&self) -> &[&'static ReceiverRegistration] {
        &self.receivers
    }

    /// The category with this id.
    pub fn category(&self, id: i32) -> Option<&'static CategoryInfo> {
        self.category_by_id.get(&id).copied()
    }

    /// The category with this name (as declared, e.g. `TeamUpdate`).
    pub fn category_named(&self, name: &str) -> Option<&'static CategoryInfo> {
        self.categories.iter().copied().find(|c| c.name == name)
    }

    /// The scope with this id.
    pub fn scope(&self, id: i32) -> Option<&'static ScopeInfo> {
        self.scopes.iter().copied().find(|s| s.id == id)
    }

    /// The scope with this name.
    pub fn scope_named(&self, name: &str) -> Option<&'static ScopeInfo> {
        self.scopes.iter().copied().find(|s| s.name == name)
    }

    /// The receiver of `category` for rows of `direction`.
    pub fn receiver(&self, category: i32, direction: Direction) -> Option<&'static ReceiverRegistration> {
        self.receiver_by_key.get(&(category, direction)).copied()
    }

    /// Checks the whole registry and returns every problem at once.
    ///
    /// # Errors
    /// A [`RegistryError`] listing duplicate ids, duplicate receivers, live
    /// categories without a receiver and receivers of unusable categories.
    pub fn validate(&self) -> Result<(), RegistryError> {
        let mut problems = Vec::new();
        let name = |c: &CategoryInfo| format!("{}::{}", c.declared_in, c.name);

        let mut scopes_by_id: BTreeMap<i32, Vec<&ScopeInfo>> = BTreeMap::new();
        for s in &self.scopes {
            scopes_by_id.entry(s.id).or_default().push(s);
        }
        for (id, same) in &scopes_by_id {
            for pair in same.windows(2) {
                problems.push(RegistryProblem::DuplicateScope {
                    id: *id,
                    first: format!("{}::{}", pair[0].declared_in, pair[0].name),
                    second: format!("{}::{}", pair[1].declared_in, pair[1].name),
                });
            }
        }

        let mut categories_by_id: BTreeMap<i32, Vec<&CategoryInfo>> = BTreeMap::new();
        for c in &self.categories {
            categories_by_id.entry(c.id).or_default().push(c);
        }
        for (id, same) in &categories_by_id {
            for pair in same.windows(2) {
                problems.push(RegistryProblem::DuplicateCategory {
                    id: *id,
                    first: name(pair[0]),
                    second: name(pair[1]),
                });
            }
        }

        let mut receivers_by_key: BTreeMap<(i32, Direction), Vec<&ReceiverRegistration>> = BTreeMap::new();
        for r in &self.receivers {
            receivers_by_key.entry((r.category, r.direction())).or_default().push(r);
        }
        for ((id, direction), same) in &receivers_by_key {
            let category = self.category(*id);
            for pair in same.windows(2) {
                problems.push(RegistryProblem::DuplicateReceiver {
                    category: category.map_or_else(|| id.to_string(), |c| c.name.to_string()),
                    direction: *direction,
                    first: pair[0].name.to_string(),
                    first_module: pair[0].registered_in.to_string(),
                    second: pair[1].name.to_string(),
                    second_module: pair[1].registered_in.to_string(),
                });
            }
            let why = match category {
                None => Some("not declared in any #[outbox_category] enum linked into this binary"),
                Some(c) if c.retired => Some("retired"),
                Some(_) => None,
            };
            if let Some(why) = why {
                for r in same {
                    problems.push(RegistryProblem::ReceiverForUnusableCategory {
                        receiver: r.name.to_string(),
                        module: r.registered_in.to_string(),
                        id: *id,
                        why,
                    });
                }
            }
        }

        for c in categories_by_id.values().map(|same| same[0]) {
            if c.retired {
                continue;
            }
            let receiver = Direction::ALL.iter().find_map(|d| self.receiver(c.id, *d));
            match (c.discard, receiver) {
                (false, None) => {
                    problems.push(RegistryProblem::MissingReceiver { category: c.name.to_string(), id: c.id })
                }
                (true, Some(r)) => problems.push(RegistryProblem::DiscardWithReceiver {
                    category: c.name.to_string(),
                    receiver: r.name.to_string(),
                }),
                _ => {}
            }
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(RegistryError { problems })
        }
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("scopes", &self.scopes.len())
            .field("categories", &self.categories.len())
            .field("receivers", &self.receivers.len())
            .finish()
    }
}
