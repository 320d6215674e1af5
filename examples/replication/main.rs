//! The replication demo: region databases and a control database kept in sync
//! by outboxes. See `app/mod.rs` for the command line, or run
//! `cargo run --example replication -- --help`.
//!
//! ```text
//! replication migrate --region URL [--region URL ...] --control URL
//! replication produce --region URL ... --control URL --ops N [--seed S]
//! replication work    --region URL ... --control URL [--workers W] [--until-idle]
//! replication verify  --region URL ... --control URL
//! replication status  --region URL ... --control URL [--json]
//! replication backfill --region URL ... --control URL [--batch-size N] [--rows-per-minute N]
//! ```

mod app;

fn main() {
    std::process::exit(app::run(std::env::args_os()));
}
