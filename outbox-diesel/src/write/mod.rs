//! The write path: outbox rows written in the caller's transaction.

mod combined;
mod insert;
mod message;
pub mod row;

pub use combined::ChangeWithOutbox;
pub use insert::insert_rows;
pub use message::{write_control_message, write_region_message};
pub use row::{check_region_name, region_names, to_payload, Identifier, OutboxRow, MAX_REGION_NAME};
