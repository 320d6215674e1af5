use std::fmt;

/// Which way an outbox carries messages.
///
/// A *region* outbox is written in a region database and drained there (towards
/// control); a *control* outbox is written in the control database with one row per
/// target region (towards the regions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Rows of `region_outbox`, processed by `region` receivers.
    Region,
    /// Rows of `control_outbox`, processed by `control` receivers.
    Control,
}

impl Direction {
    /// Both directions, region first.
    pub const ALL: [Direction; 2] = [Direction::Region, Direction::Control];

    /// The outbox table holding rows of this direction.
    pub const fn table(self) -> &'static str {
        match self {
            Direction::Region => "region_outbox",
            Direction::Control => "control_outbox",
        }
    }

    /// The lower-case name used in attributes, logs and the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Region => "region",
            Direction::Control => "control",
        }
    }

    /// The stable number stored in bookkeeping tables.
    pub const fn code(self) -> i32 {
        match self {
            Direction::Region => 0,
            Direction::Control => 1,
        }
    }

    /// The inverse of [`Direction::code`].
    pub const fn from_code(code: i32) -> Option<Self> {
        match code {
            0 => Some(Direction::Region),
            1 => Some(Direction::Control),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
