/// What happens after `outbox::transaction` commits the shards it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushPolicy {
    /// Wake workers: in-process workers at once, and on PostgreSQL other
    /// processes through `NOTIFY` sent at commit. The default.
    #[default]
    Notify,
    /// Deliver the written shards in the caller's thread right after commit.
    Synchronous,
    /// Do nothing; workers find the rows when they poll.
    Deferred,
}
