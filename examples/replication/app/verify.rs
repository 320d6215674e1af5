//! `verify`: every source table against its replicas.
//!
//! - region `teams`, `organization_members`, `audit_log_events` against
//!   control's `team_mapping`, `organization_member_mapping`, `audit_log_entries`;
//! - control `users` against each region's `user_cache` (the users whose
//!   `regions` name it), and `api_tokens` against `api_token_cache` (the tokens
//!   of those users).
//!
//! A replica row is *missing* when its source has it and the replica not,
//! *stale* when both have it with different values, *extra* when only the
//! replica has it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Write;

use diesel::prelude::*;
use serde_json::{json, Value};

use super::models::split_regions;
use super::schema::*;
use super::silo::{open_all, Silo};
use super::{AppError, Silos};

type Key = (String, i64);

#[derive(Default)]
struct Tally {
    tables: BTreeMap<&'static str, [u64; 4]>,
    examples: Vec<String>,
}

impl Tally {
    fn compare<V: PartialEq + Debug>(
        &mut self,
        table: &'static str,
        expected: BTreeMap<Key, V>,
        actual: BTreeMap<Key, V>,
    ) {
        let counts = self.tables.entry(table).or_default();
        counts[0] += expected.len() as u64;
        let mut note = |what: &str, key: &Key, detail: String| {
            if self.examples.len() < 10 {
                self.examples.push(format!("{table} {}/{}: {what}{detail}", key.0, key.1));
            }
        };
        for (key, want) in &expected {
            match actual.get(key) {
                None => {
                    counts[1] += 1;
                    note("missing", key, String::new());
                }
                Some(got) if got != want => {
                    counts[2] += 1;
                    note("stale", key, format!(" (want {want:?}, got {got:?})"));
                }
                Some(_) => {}
            }
        }
        for key in actual.keys().filter(|k| !expected.contains_key(*k)) {
            counts[3] += 1;
            note("extra", key, String::new());
        }
    }

    fn total(&self, i: usize) -> u64 {
        self.tables.values().map(|c| c[i]).sum()
    }
}

pub fn verify(args: &Silos, out: &mut dyn Write) -> Result<i32, AppError> {
    let silos = open_all(&args.regions, &args.control, 2, false)?;
    for silo in &silos {
        silo.check_migrated()?;
    }
    let (control, regions) = silos.split_last().expect("control");
    let mut tally = Tally::default();

    type TeamRow = (i64, i64, String);
    type MemberRow = (i64, i64, i64, String);
    type EventRow = (i64, i64, i64, String);
    let (users_src, tokens_src, team_map, member_map, audit_map) = with_conn!(&control.pool, |c| (
        users::table
            .select((users::id, users::email, users::name, users::regions))
            .load::<(i64, String, String, String)>(c)?,
        api_tokens::table
            .select((api_tokens::id, api_tokens::user_id, api_tokens::label))
            .load::<(i64, i64, String)>(c)?,
        team_mapping::table
            .select((
                team_mapping::region_name,
                team_mapping::team_id,
                team_mapping::organization_id,
                team_mapping::name
            ))
            .load::<(String, i64, i64, String)>(c)?,
        organization_member_mapping::table
            .select((
                organization_member_mapping::region_name,
                organization_member_mapping::member_id,
                organization_member_mapping::organization_id,
                organization_member_mapping::user_id,
                organization_member_mapping::role,
            ))
            .load::<(String, i64, i64, i64, String)>(c)?,
        audit_log_entries::table
            .select((
                audit_log_entries::region_name,
                audit_log_entries::event_id,
                audit_log_entries::organization_id,
                audit_log_entries::actor_user_id,
                audit_log_entries::event,
            ))
            .load::<(String, i64, i64, i64, String)>(c)?,
    ));

    let (mut teams_src, mut members_src, mut events_src) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let (mut users_want, mut users_got, mut tokens_want, mut tokens_got) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let user_regions: BTreeMap<i64, Vec<String>> = users_src.iter().map(|u| (u.0, split_regions(&u.3))).collect();
    for silo in regions {
        let name = silo.name.clone();
        let (teams_rows, members_rows, events_rows, ucache, tcache) = with_conn!(&silo.pool, |c| (
            teams::table.select((teams::id, teams::organization_id, teams::name)).load::<TeamRow>(c)?,
            organization_members::table
                .select((
                    organization_members::id,
                    organization_members::organization_id,
                    organization_members::user_id,
                    organization_members::role,
                ))
                .load::<MemberRow>(c)?,
            audit_log_events::table
                .select((
                    audit_log_events::id,
                    audit_log_events::organization_id,
                    audit_log_events::actor_user_id,
                    audit_log_events::event,
                ))
                .load::<EventRow>(c)?,
            user_cache::table
                .select((user_cache::id, user_cache::email, user_cache::name))
                .load::<(i64, String, String)>(c)?,
            api_token_cache::table
                .select((api_token_cache::id, api_token_cache::user_id, api_token_cache::label))
                .load::<(i64, i64, String)>(c)?,
        ));
        for (id, org, team) in teams_rows {
            teams_src.insert((name.clone(), id), (org, team));
        }
        for (id, org, user, role) in members_rows {
            members_src.insert((name.clone(), id), (org, user, role));
        }
        for (id, org, actor, event) in events_rows {
            events_src.insert((name.clone(), id), (org, actor, event));
        }
        for (id, email, user_name, regions) in &users_src {
            if split_regions(regions).contains(&name) {
                users_want.insert((name.clone(), *id), (email.clone(), user_name.clone()));
            }
        }
        for (id, user, label) in &tokens_src {
            if user_regions.get(user).is_some_and(|r| r.contains(&name)) {
                tokens_want.insert((name.clone(), *id), (*user, label.clone()));
            }
        }
        for (id, email, user_name) in ucache {
            users_got.insert((name.clone(), id), (email, user_name));
        }
        for (id, user, label) in tcache {
            tokens_got.insert((name.clone(), id), (user, label));
        }
    }
    let team_got = team_map.into_iter().map(|(r, id, org, n)| ((r, id), (org, n))).collect();
    let member_got = member_map.into_iter().map(|(r, id, org, u, role)| ((r, id), (org, u, role))).collect();
    let audit_got = audit_map.into_iter().map(|(r, id, org, a, e)| ((r, id), (org, a, e))).collect();
    tally.compare("team_mapping", teams_src, team_got);
    tally.compare("organization_member_mapping", members_src, member_got);
    tally.compare("audit_log_entries", events_src, audit_got);
    tally.compare("user_cache", users_want, users_got);
    tally.compare("api_token_cache", tokens_want, tokens_got);

    let pending: i64 = silos.iter().map(Silo::pending).sum::<Result<i64, _>>()?;
    let (missing, stale, extra) = (tally.total(1), tally.total(2), tally.total(3));
    let consistent = missing + stale + extra == 0;
    let tables: BTreeMap<&str, Value> = tally
        .tables
        .iter()
        .map(|(t, c)| (*t, json!({ "source": c[0], "missing": c[1], "stale": c[2], "extra": c[3] })))
        .collect();
    let report = json!({
        "consistent": consistent,
        "missing": missing,
        "stale": stale,
        "extra": extra,
        "checked": tally.total(0),
        "pending_outbox_rows": pending,
        "tables": tables,
        "examples": tally.examples,
    });
    writeln!(out, "{report}")?;
    Ok(if consistent { 0 } else { 1 })
}
