use outbox_core::Direction;

/// Why an outbox write (or migration) failed. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database refused a statement.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// A payload did not serialize to JSON.
    #[error("the payload of category `{category}` does not serialize to JSON: {source}")]
    Payload {
        /// Category name.
        category: &'static str,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// A target region name does not fit `control_outbox.region_name`.
    #[error("region name {name:?} is {len} characters long; region names must be 1 to {max} characters")]
    RegionName {
        /// The offending name.
        name: String,
        /// Its length in characters.
        len: usize,
        /// The column's limit.
        max: usize,
    },
    /// An identifier does not fit the BIGINT column.
    #[error("{field} = {value} does not fit a 64-bit signed outbox identifier")]
    IdOutOfRange {
        /// Which identifier (`object_identifier`, `shard_identifier`).
        field: &'static str,
        /// The value, printed.
        value: String,
    },
    /// A message written with a category that belongs to another scope.
    #[error("category `{category}` belongs to scope `{expected}`, not `{given}`; write it with its own scope")]
    ScopeMismatch {
        /// Category name.
        category: &'static str,
        /// The category's scope.
        expected: &'static str,
        /// The scope given.
        given: &'static str,
    },
    /// A retired category cannot be written.
    #[error("category `{0}` is retired; its id is reserved and no rows may be written with it")]
    Retired(&'static str),
    /// A row of the wrong direction for the category's model.
    #[error("category `{category}` is written to the {direction} outbox by its model; use that direction")]
    WrongDirection {
        /// Category name.
        category: &'static str,
        /// The expected direction.
        direction: Direction,
    },
    /// A control model returned no target region: the change would reach nobody.
    #[error("control model `{model}` returned no target region for object {object}; return at least one region name")]
    NoRegions {
        /// Model type name.
        model: &'static str,
        /// The object identifier.
        object: i64,
    },
    /// The embedded migrations failed.
    #[error("outbox migrations failed: {0}")]
    Migration(String),
    /// `update()` found no row with the model's primary key.
    #[error("update of `{model}` with id {object} changed no row; use save() to insert")]
    NotFound {
        /// Model type name.
        model: &'static str,
        /// The object identifier.
        object: i64,
    },
}

/// Shorthand for results of outbox writes.
pub type Result<T, E = Error> = std::result::Result<T, E>;
