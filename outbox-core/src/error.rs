use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// Why a receiver did not deliver a message. The shard backs off and retries.
///
/// Any error type converts into it with `?`, so receivers can return
/// database, HTTP or serde errors directly:
///
/// ```
/// use outbox::ReceiverError;
///
/// fn parse(raw: &str) -> Result<i64, ReceiverError> {
///     Ok(raw.parse::<i64>()?)
/// }
/// assert!(parse("x").unwrap_err().to_string().contains("invalid digit"));
/// assert_eq!(ReceiverError::msg("gone").to_string(), "gone");
/// ```
///
/// Like `anyhow::Error` it does not implement [`std::error::Error`] itself (that
/// would conflict with the blanket conversion); use [`ReceiverError::source_error`]
/// to reach the wrapped error.
pub struct ReceiverError {
    kind: Kind,
}

enum Kind {
    Message(String),
    Wrapped(Box<dyn StdError + Send + Sync + 'static>),
    Panicked(String),
    Deadline(Duration),
}

impl ReceiverError {
    /// An error carrying only a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        ReceiverError { kind: Kind::Message(message.to_string()) }
    }

    /// The error of a receiver that panicked (the engine catches panics).
    pub fn panicked(message: impl fmt::Display) -> Self {
        ReceiverError { kind: Kind::Panicked(message.to_string()) }
    }

    /// The error of a receiver that ran past its deadline.
    pub fn deadline_exceeded(deadline: Duration) -> Self {
        ReceiverError { kind: Kind::Deadline(deadline) }
    }

    /// Whether the receiver panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, Kind::Panicked(_))
    }

    /// The wrapped error, when the receiver returned one.
    pub fn source_error(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        match &self.kind {
            Kind::Wrapped(e) => Some(&**e),
            _ => None,
        }
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for ReceiverError {
    fn from(error: E) -> Self {
        ReceiverError { kind: Kind::Wrapped(Box::new(error)) }
    }
}

impl fmt::Display for ReceiverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Message(m) => f.write_str(m),
            Kind::Wrapped(e) => {
                write!(f, "{e}")?;
                let mut source = e.source();
                while let Some(s) = source {
                    write!(f, ": {s}")?;
                    source = s.source();
                }
                Ok(())
            }
            Kind::Panicked(m) => write!(f, "receiver panicked: {m}"),
            Kind::Deadline(d) => write!(f, "receiver ran past its deadline of {d:?}"),
        }
    }
}

impl fmt::Debug for ReceiverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReceiverError({self})")
    }
}
