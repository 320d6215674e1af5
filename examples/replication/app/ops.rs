//! `migrate`, `status` and `backfill`.

use std::io::Write;

use diesel::prelude::*;
use outbox::backfill::BackfillOptions;
use outbox::cli::{Cli as OutboxCli, Command as OutboxCommand};
use outbox::inspect::StatusReport;
use outbox::OutboxModel;
use serde_json::json;

use super::models::{ApiToken, OrganizationMember, Team, User};
use super::silo::{open_all, Kind, Silo};
use super::{AppError, Silos};

pub fn migrate(args: &Silos, out: &mut dyn Write) -> Result<i32, AppError> {
    let silos = open_all(&args.regions, &args.control, 2, true)?;
    for silo in &silos {
        silo.migrate().map_err(|e| AppError::msg(format!("{} ({}): migration failed: {e}", silo.name, silo.url)))?;
    }
    let names: Vec<&str> = silos.iter().map(|s| s.name.as_str()).collect();
    writeln!(out, "{}", json!({ "migrated": names }))?;
    Ok(0)
}

/// The inspector's report of each silo, category and scope names resolved
/// through this program's registry.
pub fn status(args: &Silos, as_json: bool, out: &mut dyn Write) -> Result<i32, AppError> {
    let silos = open_all(&args.regions, &args.control, 2, false)?;
    let registry = outbox::registry();
    if as_json {
        let mut reports = Vec::new();
        for silo in &silos {
            let report = with_conn!(&silo.pool, |c| StatusReport::collect(c)?.with_registry(registry));
            reports.push(json!({ "silo": silo.name, "report": report }));
        }
        writeln!(out, "{}", json!({ "silos": reports }))?;
        return Ok(0);
    }
    for silo in &silos {
        writeln!(out, "== {} ({})", silo.name, silo.url)?;
        let cli = OutboxCli {
            database_url: Some(silo.url.clone()),
            json: false,
            known_categories: None,
            command: OutboxCommand::Status,
        };
        with_conn!(&silo.pool, |c| outbox::cli::execute(&cli, registry, c, out)?);
        writeln!(out)?;
    }
    Ok(0)
}

/// Backfills the four demo models: teams and members in each region, users
/// and API tokens in control. Audit events are payload-only: nothing to backfill.
pub fn backfill(args: &Silos, batch_size: usize, rows_per_minute: u32, out: &mut dyn Write) -> Result<i32, AppError> {
    let silos = open_all(&args.regions, &args.control, 2, false)?;
    for silo in &silos {
        silo.check_migrated()?;
    }
    let options = BackfillOptions {
        batch_size: batch_size.max(1),
        rows_per_minute: (rows_per_minute > 0).then_some(rows_per_minute),
        ..BackfillOptions::default()
    };
    let mut done = Vec::new();
    for silo in &silos {
        let summaries = match silo.kind() {
            Kind::Region => {
                vec![backfill_one::<Team>(silo, &options)?, backfill_one::<OrganizationMember>(silo, &options)?]
            }
            Kind::Control => vec![backfill_one::<User>(silo, &options)?, backfill_one::<ApiToken>(silo, &options)?],
        };
        for s in summaries {
            done.push(json!({ "silo": silo.name, "summary": s }));
        }
    }
    writeln!(out, "{}", json!({ "backfilled": done }))?;
    Ok(0)
}

fn backfill_one<M: OutboxModel>(
    silo: &Silo,
    options: &BackfillOptions,
) -> Result<outbox::backfill::BackfillSummary, AppError> {
    let count = format!("SELECT COUNT(*) AS n FROM {}", M::TABLE_NAME);
    Ok(with_conn!(&silo.pool, |c| {
        let total = diesel::sql_query(&count).get_result::<Count>(c)?.n;
        outbox::cli::backfill_with_bar::<M, _>(c, options.clone(), u64::try_from(total).ok())?
    }))
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}
