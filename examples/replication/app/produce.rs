//! `produce`: N random operations with a seed, each in its own transaction
//! (an operation that touches control and a region commits once in each).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Instant;

use diesel::prelude::*;
use outbox::OutboxModel;
use rand::distributions::WeightedIndex;
use rand::prelude::*;
use serde_json::json;

use super::models::{split_regions, ApiToken, AuditEvent, Category, OrganizationMember, Scope, Team, User};
use super::schema::{api_tokens, audit_log_events, organization_members, teams, users};
use super::silo::{open_all, region_name, Silo};
use super::{AppError, Silos};

/// Writes an audit event's source row and its payload-only outbox message, in
/// the transaction of the change it records. A macro rather than a function:
/// the insert is plain Diesel, checked once per backend.
macro_rules! record {
    ($c:expr, $event:expr) => {{
        let (c, event): (_, &AuditEvent) = ($c, $event);
        diesel::insert_into(audit_log_events::table).values(event).execute(c)?;
        let payload = Some(event.payload());
        outbox::write_region_message(c, Scope::AuditLog, Category::AuditLogEvent, event.organization_id, payload)?;
        Ok::<(), AppError>(())
    }};
}

/// Organizations of region `i` (0-based): a fixed set, so every command agrees.
fn organizations(region: usize) -> Vec<i64> {
    let base = (region as i64 + 1) * 1000;
    (1..=5).map(|k| base + k).collect()
}

#[derive(Default)]
struct Region {
    teams: BTreeMap<i64, Team>,
    members: BTreeMap<i64, OrganizationMember>,
    next_team: i64,
    next_member: i64,
    next_event: i64,
}

struct World {
    regions: Vec<Region>,
    users: BTreeMap<i64, User>,
    tokens: BTreeMap<i64, ApiToken>,
    next_user: i64,
    next_token: i64,
}

fn next_id(ids: impl Iterator<Item = i64>) -> i64 {
    ids.max().unwrap_or(0) + 1
}

impl World {
    /// What the databases hold now, so runs can follow each other.
    fn load(silos: &[Silo]) -> Result<World, AppError> {
        let (control, regions) = silos.split_last().expect("at least one region and control");
        let mut world =
            World { regions: Vec::new(), users: BTreeMap::new(), tokens: BTreeMap::new(), next_user: 1, next_token: 1 };
        for silo in regions {
            let (teams, members, events) = with_conn!(&silo.pool, |c| (
                teams::table.order(teams::id).select(Team::as_select()).load(c)?,
                organization_members::table
                    .order(organization_members::id)
                    .select(OrganizationMember::as_select())
                    .load(c)?,
                audit_log_events::table.select(diesel::dsl::max(audit_log_events::id)).first::<Option<i64>>(c)?,
            ));
            let region = Region {
                next_team: next_id(teams.iter().map(|t: &Team| t.id)),
                next_member: next_id(members.iter().map(|m: &OrganizationMember| m.id)),
                next_event: events.unwrap_or(0) + 1,
                teams: teams.into_iter().map(|t| (t.id, t)).collect(),
                members: members.into_iter().map(|m| (m.id, m)).collect(),
            };
            world.regions.push(region);
        }
        let (users, tokens) = with_conn!(&control.pool, |c| (
            users::table.order(users::id).select(User::as_select()).load(c)?,
            api_tokens::table.order(api_tokens::id).select(ApiToken::as_select()).load(c)?,
        ));
        world.next_user = next_id(users.iter().map(|u: &User| u.id));
        world.next_token = next_id(tokens.iter().map(|t: &ApiToken| t.id));
        world.users = users.into_iter().map(|u| (u.id, u)).collect();
        world.tokens = tokens.into_iter().map(|t| (t.id, t)).collect();
        Ok(world)
    }
}

fn pick<'a, K: Ord + Copy, V>(rng: &mut StdRng, map: &'a BTreeMap<K, V>) -> Option<(K, &'a V)> {
    if map.is_empty() {
        return None;
    }
    map.iter().nth(rng.gen_range(0..map.len())).map(|(k, v)| (*k, v))
}

const OPS: &[(&str, u32)] = &[
    ("team.create", 14),
    ("team.update", 10),
    ("team.delete", 5),
    ("team.bulk_create", 4),
    ("team.bulk_delete", 2),
    ("member.add", 10),
    ("member.role", 6),
    ("member.remove", 4),
    ("user.create", 8),
    ("user.update", 6),
    ("user.delete", 2),
    ("token.create", 6),
    ("token.update", 4),
    ("token.delete", 3),
    ("audit.event", 10),
];

pub fn produce(args: &Silos, ops: u64, seed: u64, out: &mut dyn Write) -> Result<i32, AppError> {
    let silos = open_all(&args.regions, &args.control, 2, false)?;
    for silo in &silos {
        silo.check_migrated()?;
    }
    let started = Instant::now();
    let mut world = World::load(&silos)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let weights = WeightedIndex::new(OPS.iter().map(|(_, w)| *w)).expect("positive weights");
    let mut done: BTreeMap<&'static str, u64> = BTreeMap::new();
    for _ in 0..ops {
        let wanted = OPS[weights.sample(&mut rng)].0;
        let did = apply(wanted, &mut world, &silos, &mut rng)?;
        *done.entry(did).or_default() += 1;
    }
    let summary = json!({
        "ops": ops,
        "seed": seed,
        "done": done,
        "teams": world.regions.iter().map(|r| r.teams.len()).sum::<usize>(),
        "members": world.regions.iter().map(|r| r.members.len()).sum::<usize>(),
        "users": world.users.len(),
        "tokens": world.tokens.len(),
        "elapsed_ms": started.elapsed().as_millis() as u64,
    });
    writeln!(out, "{summary}")?;
    Ok(0)
}

/// Performs `wanted`, or a create of the same kind when there is nothing to
/// change yet; returns what was done.
fn apply(wanted: &'static str, w: &mut World, silos: &[Silo], rng: &mut StdRng) -> Result<&'static str, AppError> {
    let control = &silos[silos.len() - 1];
    let r = rng.gen_range(0..w.regions.len());
    let region_silo = &silos[r];
    let org = *organizations(r).choose(rng).expect("organizations");
    match wanted {
        "team.update" | "team.delete" | "team.bulk_delete" if w.regions[r].teams.is_empty() => {
            apply("team.create", w, silos, rng)
        }
        "member.role" | "member.remove" if w.regions[r].members.is_empty() => apply("member.add", w, silos, rng),
        "member.add" | "user.update" | "user.delete" | "token.create" if w.users.is_empty() => {
            apply("user.create", w, silos, rng)
        }
        "token.update" | "token.delete" if w.tokens.is_empty() => apply("token.create", w, silos, rng),
        "team.create" => {
            let region = &mut w.regions[r];
            let team = Team { id: region.next_team, organization_id: org, name: format!("team-{}", region.next_team) };
            region.next_team += 1;
            with_conn!(&region_silo.pool, |c| team.save(c)?);
            region.teams.insert(team.id, team);
            Ok(wanted)
        }
        "team.bulk_create" => {
            let region = &mut w.regions[r];
            let n = rng.gen_range(2..=5);
            let new: Vec<Team> = (0..n)
                .map(|i| Team {
                    id: region.next_team + i,
                    organization_id: org,
                    name: format!("team-{}", region.next_team + i),
                })
                .collect();
            region.next_team += n;
            with_conn!(&region_silo.pool, |c| Team::bulk_create(c, &new)?);
            region.teams.extend(new.into_iter().map(|t| (t.id, t)));
            Ok(wanted)
        }
        "team.update" => {
            let (id, team) = pick(rng, &w.regions[r].teams).expect("teams");
            let mut team = team.clone();
            team.name = format!("team-{id}-{}", rng.gen_range(0..1_000_000));
            with_conn!(&region_silo.pool, |c| team.update(c)?);
            w.regions[r].teams.insert(id, team);
            Ok(wanted)
        }
        "team.delete" => {
            let (id, team) = pick(rng, &w.regions[r].teams).expect("teams");
            with_conn!(&region_silo.pool, |c| team.delete(c)?);
            w.regions[r].teams.remove(&id);
            Ok(wanted)
        }
        "team.bulk_delete" => {
            let n = rng.gen_range(1..=3).min(w.regions[r].teams.len());
            let gone: Vec<Team> =
                w.regions[r].teams.values().cloned().collect::<Vec<_>>().choose_multiple(rng, n).cloned().collect();
            with_conn!(&region_silo.pool, |c| Team::bulk_delete(c, &gone)?);
            for t in gone {
                w.regions[r].teams.remove(&t.id);
            }
            Ok(wanted)
        }
        "member.add" => {
            let (user_id, user) = pick(rng, &w.users).expect("users");
            let mut user = user.clone();
            let name = region_name(r);
            let mut regions = split_regions(&user.regions);
            if !regions.contains(&name) {
                // The user now belongs to an organization of region r: tell that
                // region about the user and their tokens, in one control transaction.
                regions.push(name);
                regions.sort_by_key(|n| n[1..].parse::<usize>().unwrap_or(0));
                user.regions = regions.join(",");
                let tokens: Vec<ApiToken> = w
                    .tokens
                    .values()
                    .filter(|t| t.user_id == user_id)
                    .map(|t| ApiToken { regions: user.regions.clone(), ..t.clone() })
                    .collect();
                with_conn!(&control.pool, |c| c.transaction::<_, AppError, _>(|c| {
                    user.update(c)?;
                    if !tokens.is_empty() {
                        ApiToken::bulk_update(c, &tokens)?;
                    }
                    Ok(())
                })?);
                for t in tokens {
                    w.tokens.insert(t.id, t);
                }
                w.users.insert(user_id, user);
            }
            let region = &mut w.regions[r];
            let member =
                OrganizationMember { id: region.next_member, organization_id: org, user_id, role: "member".into() };
            region.next_member += 1;
            let event = AuditEvent {
                id: region.next_event,
                organization_id: org,
                actor_user_id: user_id,
                event: "member.add".into(),
            };
            region.next_event += 1;
            with_conn!(&region_silo.pool, |c| c.transaction::<_, AppError, _>(|c| {
                member.save(c)?;
                record!(c, &event)
            })?);
            region.members.insert(member.id, member);
            Ok(wanted)
        }
        "member.role" => {
            let (id, member) = pick(rng, &w.regions[r].members).expect("members");
            let mut member = member.clone();
            member.role = ["member", "admin", "owner", "billing"].choose(rng).expect("roles").to_string();
            with_conn!(&region_silo.pool, |c| member.update(c)?);
            w.regions[r].members.insert(id, member);
            Ok(wanted)
        }
        "member.remove" => {
            let region = &mut w.regions[r];
            let (id, member) = pick(rng, &region.members).expect("members");
            let event = AuditEvent {
                id: region.next_event,
                organization_id: member.organization_id,
                actor_user_id: member.user_id,
                event: "member.remove".into(),
            };
            region.next_event += 1;
            with_conn!(&region_silo.pool, |c| c.transaction::<_, AppError, _>(|c| {
                member.delete(c)?;
                record!(c, &event)
            })?);
            region.members.remove(&id);
            Ok(wanted)
        }
        "user.create" => {
            let n = w.regions.len();
            let mut regions: BTreeSet<usize> = BTreeSet::new();
            regions.insert(rng.gen_range(0..n));
            if n > 1 && rng.gen_bool(0.3) {
                regions.insert(rng.gen_range(0..n));
            }
            let id = w.next_user;
            w.next_user += 1;
            let user = User {
                id,
                email: format!("user{id}@example.com"),
                name: format!("User {id}"),
                regions: regions.iter().map(|i| region_name(*i)).collect::<Vec<_>>().join(","),
            };
            with_conn!(&control.pool, |c| user.save(c)?);
            w.users.insert(id, user);
            Ok(wanted)
        }
        "user.update" => {
            let (id, user) = pick(rng, &w.users).expect("users");
            let mut user = user.clone();
            user.name = format!("User {id} ({})", rng.gen_range(0..1_000_000));
            with_conn!(&control.pool, |c| user.update(c)?);
            w.users.insert(id, user);
            Ok(wanted)
        }
        "user.delete" => {
            let (id, user) = pick(rng, &w.users).expect("users");
            let user = user.clone();
            let tokens: Vec<ApiToken> = w.tokens.values().filter(|t| t.user_id == id).cloned().collect();
            with_conn!(&control.pool, |c| c.transaction::<_, AppError, _>(|c| {
                if !tokens.is_empty() {
                    ApiToken::bulk_delete(c, &tokens)?;
                }
                user.delete(c)?;
                Ok(())
            })?);
            for t in tokens {
                w.tokens.remove(&t.id);
            }
            w.users.remove(&id);
            Ok(wanted)
        }
        "token.create" => {
            let (user_id, user) = pick(rng, &w.users).expect("users");
            let id = w.next_token;
            w.next_token += 1;
            let token = ApiToken { id, user_id, label: format!("token-{id}"), regions: user.regions.clone() };
            with_conn!(&control.pool, |c| token.save(c)?);
            w.tokens.insert(id, token);
            Ok(wanted)
        }
        "token.update" => {
            let (id, token) = pick(rng, &w.tokens).expect("tokens");
            let mut token = token.clone();
            token.label = format!("token-{id}-{}", rng.gen_range(0..1_000_000));
            with_conn!(&control.pool, |c| token.update(c)?);
            w.tokens.insert(id, token);
            Ok(wanted)
        }
        "token.delete" => {
            let (id, token) = pick(rng, &w.tokens).expect("tokens");
            with_conn!(&control.pool, |c| token.delete(c)?);
            w.tokens.remove(&id);
            Ok(wanted)
        }
        "audit.event" => {
            let region = &mut w.regions[r];
            let actor = pick(rng, &w.users).map_or(0, |(id, _)| id);
            let kind = ["org.update", "project.create", "sso.edit", "integration.add"].choose(rng).expect("kinds");
            let event = AuditEvent {
                id: region.next_event,
                organization_id: org,
                actor_user_id: actor,
                event: kind.to_string(),
            };
            region.next_event += 1;
            with_conn!(&region_silo.pool, |c| c.transaction::<_, AppError, _>(|c| record!(c, &event))?);
            Ok(wanted)
        }
        other => Err(AppError::msg(format!("unknown operation {other}"))),
    }
}
