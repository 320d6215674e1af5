//! The engine's SQL. One text per statement for both backends, with the few
//! differences (timestamp literals, placeholders, `SKIP LOCKED`, `ANY`) chosen here.
//!
//! Numbers, timestamps, tokens (generated here) and region names (escaped) are
//! inlined as literals; text written by users (errors) is bound.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Json, Nullable, Text, Timestamp};
use outbox_core::{registry, Direction};
use serde_json::Value;

use crate::backend::{Backend, DbConn};
use crate::flush::ShardKey;

/// A coalesced group loaded for delivery: every row of one (shard, category,
/// object) present at load time, represented by its newest row.
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct LoadedGroup {
    /// The newest row of the group: the one delivered; rows up to it are deleted.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// The oldest row of the group: its place in the shard's order.
    #[diesel(sql_type = BigInt)]
    pub first_id: i64,
    /// Rows in the group.
    #[diesel(sql_type = BigInt)]
    pub n_rows: i64,
    #[diesel(sql_type = Integer)]
    pub shard_scope: i32,
    #[diesel(sql_type = BigInt)]
    pub shard_identifier: i64,
    #[diesel(sql_type = Text)]
    pub region_name: String,
    #[diesel(sql_type = Integer)]
    pub category: i32,
    #[diesel(sql_type = BigInt)]
    pub object_identifier: i64,
    /// The newest row's payload.
    #[diesel(sql_type = Nullable<Json>)]
    pub payload: Option<Value>,
    /// When the oldest row of the group was written.
    #[diesel(sql_type = Timestamp)]
    pub date_added: NaiveDateTime,
    /// Every row id of the group, comma-separated, when they are all known
    /// (the group ends inside the prefix read); otherwise NULL.
    #[diesel(sql_type = Nullable<Text>)]
    pub delete_ids: Option<String>,
}

impl LoadedGroup {
    /// What deletes this group's rows once delivered.
    pub fn delete_key(&self) -> GroupDelete {
        GroupDelete {
            shard_scope: self.shard_scope,
            shard_identifier: self.shard_identifier,
            region_name: self.region_name.clone(),
            category: self.category,
            object_identifier: self.object_identifier,
            max_id: self.id,
            ids: self.delete_ids.as_deref().and_then(|ids| ids.split(',').map(|id| id.parse().ok()).collect()),
        }
    }
}

/// The rows of one group up to the delivered id; later rows (written while the
/// receiver ran) survive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupDelete {
    pub shard_scope: i32,
    pub shard_identifier: i64,
    pub region_name: String,
    pub category: i32,
    pub object_identifier: i64,
    pub max_id: i64,
    /// The exact row ids, when known: deleted by primary key.
    pub ids: Option<Vec<i64>>,
}

/// A shard a claim leased.
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct ClaimedShard {
    #[diesel(sql_type = Integer)]
    pub shard_scope: i32,
    #[diesel(sql_type = BigInt)]
    pub shard_identifier: i64,
    #[diesel(sql_type = Text)]
    pub region_name: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct HeldShard {
    #[diesel(sql_type = Integer)]
    pub shard_scope: i32,
    #[diesel(sql_type = BigInt)]
    pub shard_identifier: i64,
    #[diesel(sql_type = Text)]
    pub region_name: String,
}

#[derive(Debug, QueryableByName)]
struct CategoryCount {
    #[diesel(sql_type = Integer)]
    category: i32,
    #[diesel(sql_type = BigInt)]
    n_rows: i64,
}

#[derive(Debug, QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// `(table, region expression)` of a direction; region rows have region name ''.
pub(crate) fn table(direction: Direction) -> (&'static str, &'static str) {
    match direction {
        Direction::Region => ("region_outbox", "CAST('' AS TEXT)"),
        Direction::Control => ("control_outbox", "o.region_name"),
    }
}

/// A timestamp literal in the backend's storage format.
pub(crate) fn ts(backend: Backend, t: NaiveDateTime) -> String {
    let text = t.format("%F %T%.f");
    match backend {
        Backend::Sqlite => format!("'{text}'"),
        Backend::Postgres => format!("'{text}'::timestamp"),
    }
}

/// A string literal; `'` doubled (standard strings on both backends).
pub(crate) fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Placeholder number `n` (1-based).
pub(crate) fn ph(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => format!("?{n}"),
        Backend::Postgres => format!("${n}"),
    }
}

/// The categories the engine handles in `direction`, as an SQL list: live
/// categories that are discarded or have a receiver for it.
pub(crate) fn handled_categories(direction: Direction) -> String {
    let ids: Vec<String> = registry()
        .categories()
        .iter()
        .filter(|c| !c.retired && (c.discard || registry().receiver(c.id, direction).is_some()))
        .map(|c| c.id.to_string())
        .collect();
    if ids.is_empty() {
        "NULL".to_string()
    } else {
        ids.join(",")
    }
}

/// Matches rows (alias `o`) of one shard.
pub(crate) fn shard_match(direction: Direction, shard: &ShardKey) -> String {
    let (_, region) = table(direction);
    format!(
        "(o.shard_scope = {} AND o.shard_identifier = {} AND {region} = {})",
        shard.shard_scope,
        shard.shard_identifier,
        lit(&shard.region_name)
    )
}

/// Matches the state row of one shard.
pub(crate) fn state_match(direction: Direction, shard: &ShardKey) -> String {
    format!(
        "direction = {} AND shard_scope = {} AND shard_identifier = {} AND region_name = {}",
        direction.code(),
        shard.shard_scope,
        shard.shard_identifier,
        lit(&shard.region_name)
    )
}

pub(crate) struct ClaimArgs<'a> {
    pub direction: Direction,
    pub categories: &'a str,
    pub extra: String,
    pub now: NaiveDateTime,
    pub lease_until: NaiveDateTime,
    pub token: &'a str,
    pub window: u32,
    pub shards: u32,
}

/// The claim: the oldest due rows' shards that nobody leases, leased to `token`
/// in one statement. The lease row is the lock: the `ON CONFLICT ... WHERE`
/// lets exactly one claimer win each shard. Outbox rows are never locked, so a
/// worker deleting what it delivered never waits on a claim, and claims insert
/// their lease rows in key order, so two claims racing for the same shards wait
/// for each other instead of deadlocking.
pub(crate) fn claim_sql(backend: Backend, a: &ClaimArgs<'_>) -> String {
    let (table, region) = table(a.direction);
    let d = a.direction.code();
    let now = ts(backend, a.now);
    let until = ts(backend, a.lease_until);
    // PostgreSQL: concurrent claims would see the same free shards and queue on
    // each other's lease rows (the loser leasing nothing). A try-lock per shard,
    // held until the claim commits, makes them pick disjoint shards without
    // waiting. Advisory locks are per database, so the key names the schema too:
    // outboxes in other schemas never collide. SQLite serializes claims through
    // its write lock.
    // The lock is taken in the candidates' order, after the window is grouped:
    // `LIMIT` stops pulling (and locking) once enough shards are won, so a claim
    // never holds shards it will not lease.
    let busy = match backend {
        Backend::Postgres => format!(
            "AND pg_try_advisory_xact_lock(hashtextextended(
                 current_schema() || ':{d}:' || g.shard_scope || ':' || g.shard_identifier || ':' || g.region_name, 0))"
        ),
        Backend::Sqlite => String::new(),
    };
    // `OFFSET 0` keeps PostgreSQL from flattening the ordered subquery, so the
    // try-locks are evaluated in order.
    let fence = match backend {
        Backend::Postgres => "OFFSET 0",
        Backend::Sqlite => "",
    };
    format!(
        "WITH win AS (
            SELECT o.id, o.shard_scope, o.shard_identifier, {region} AS region_name FROM {table} o
            WHERE o.category IN ({cats}) {extra}
              AND NOT EXISTS (SELECT 1 FROM outbox_shard s WHERE s.direction = {d} AND s.shard_scope = o.shard_scope
                   AND s.shard_identifier = o.shard_identifier AND s.region_name = {region}
                   AND (s.lease_until > {now} OR s.next_attempt_at > {now}))
              AND NOT EXISTS (SELECT 1 FROM outbox_quarantine q WHERE q.blocking AND q.direction = {d}
                   AND q.shard_scope = o.shard_scope AND q.shard_identifier = o.shard_identifier AND q.region_name = {region})
            ORDER BY o.id LIMIT {window}
        ), oldest AS (
            SELECT shard_scope, shard_identifier, region_name, MIN(id) AS first_id FROM win
            GROUP BY shard_scope, shard_identifier, region_name
        ), cand AS (
            SELECT g.shard_scope, g.shard_identifier, g.region_name
            FROM (SELECT * FROM oldest ORDER BY first_id {fence}) g
            WHERE 1 = 1 {busy}
            LIMIT {shards}
        )
        INSERT INTO outbox_shard (direction, shard_scope, shard_identifier, region_name, lease_owner, lease_until, attempts, next_attempt_at)
        SELECT {d}, shard_scope, shard_identifier, region_name, {token}, {until}, 0, {now} FROM cand WHERE 1 = 1
        ORDER BY shard_scope, shard_identifier, region_name
        ON CONFLICT (direction, shard_scope, shard_identifier, region_name) DO UPDATE
            SET lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
            WHERE outbox_shard.lease_until <= {now} AND outbox_shard.next_attempt_at <= {now}
        RETURNING shard_scope, shard_identifier, region_name, attempts",
        cats = a.categories,
        extra = a.extra,
        token = lit(a.token),
        window = a.window,
        shards = a.shards,
    )
}

/// Loads the groups of every shard leased by `token`: per shard, the groups of
/// its first `heads` rows in id order (so a shard's groups are a prefix of it),
/// each coalesced over ALL its rows in the shard (Sentry's rule: deliver the
/// newest, delete up to it), in the order of their oldest row.
///
/// One row more than `heads` is read per shard to learn whether the prefix holds
/// the whole shard: then the groups are complete as read and need no lookup.
/// Only groups of truncated shards are looked up through the coalescing index.
/// A group whose rows all lie in the prefix comes with their ids (`delete_ids`),
/// so completion deletes it by primary key.
pub(crate) fn load_sql(
    backend: Backend,
    direction: Direction,
    categories: &str,
    extra: &str,
    token: &str,
    heads: u32,
) -> String {
    let (table, region) = table(direction);
    let d = direction.code();
    let token = lit(token);
    let read = heads + 1;
    let shard_rows = format!(
        "o.shard_scope = c.shard_scope AND o.shard_identifier = c.shard_identifier AND {region} = c.region_name
         AND o.category IN ({categories}) {extra}"
    );
    let shard = "PARTITION BY c.shard_scope, c.shard_identifier, c.region_name";
    // PostgreSQL walks each shard's `(scope, shard, id)` index with LATERAL;
    // SQLite, which has no LATERAL, does the same with a correlated IN.
    let (from, ids) = match backend {
        Backend::Postgres => (
            format!(
                "outbox_shard c CROSS JOIN LATERAL (
                     SELECT o.id, o.category, o.object_identifier, o.date_added FROM {table} o
                     WHERE {shard_rows} ORDER BY o.id LIMIT {read}
                 ) o"
            ),
            "string_agg(CAST(id AS TEXT), ',')",
        ),
        Backend::Sqlite => (
            format!(
                "outbox_shard c JOIN {table} o ON o.id IN (
                     SELECT o.id FROM {table} o WHERE {shard_rows} ORDER BY o.id LIMIT {read}
                 )"
            ),
            "group_concat(id, ',')",
        ),
    };
    let group_key = format!(
        "o.shard_scope = g.shard_scope AND o.shard_identifier = g.shard_identifier AND {region} = g.region_name
         AND o.category = g.category AND o.object_identifier = g.object_identifier {extra}"
    );
    // Lookups only for truncated shards: PostgreSQL gates the LATERAL with a
    // one-time filter, SQLite skips the subqueries in the CASE.
    let (lookup, max_id, n_rows) = match backend {
        Backend::Postgres => (
            format!(
                "LEFT JOIN LATERAL (
                     SELECT MAX(o.id) AS max_id, CAST(COUNT(*) AS BIGINT) AS n_rows FROM {table} o
                     WHERE g.truncated AND {group_key}
                 ) x ON TRUE"
            ),
            "COALESCE(x.max_id, g.head_max)".to_string(),
            "CASE WHEN g.truncated THEN x.n_rows ELSE g.head_rows END".to_string(),
        ),
        Backend::Sqlite => (
            String::new(),
            format!(
                "CASE WHEN g.truncated THEN (SELECT MAX(o.id) FROM {table} o WHERE {group_key}) ELSE g.head_max END"
            ),
            format!(
                "CASE WHEN g.truncated THEN (SELECT COUNT(*) FROM {table} o WHERE {group_key}) ELSE g.head_rows END"
            ),
        ),
    };
    format!(
        "WITH h AS (
             SELECT c.shard_scope, c.shard_identifier, c.region_name, o.id, o.category, o.object_identifier, o.date_added,
                    ROW_NUMBER() OVER ({shard} ORDER BY o.id) AS rn, COUNT(*) OVER ({shard}) AS n_read
             FROM {from}
             WHERE c.direction = {d} AND c.lease_owner = {token}
         ), g AS (
             SELECT shard_scope, shard_identifier, region_name, category, object_identifier,
                    MIN(id) AS first_id, MAX(id) AS head_max, CAST(COUNT(*) AS BIGINT) AS head_rows,
                    MIN(date_added) AS first_added, MAX(n_read) > {heads} AS truncated, {ids} AS head_ids,
                    MAX(MAX(id)) OVER (PARTITION BY shard_scope, shard_identifier, region_name) AS prefix_end
             FROM h WHERE rn <= {heads}
             GROUP BY shard_scope, shard_identifier, region_name, category, object_identifier
         ), m AS (
             SELECT g.*, {max_id} AS max_id, {n_rows} AS n_rows FROM g {lookup}
         )
         SELECT m.max_id AS id, m.first_id, m.n_rows, m.shard_scope, m.shard_identifier, m.region_name, m.category,
                m.object_identifier, r.payload, m.first_added AS date_added,
                CASE WHEN m.max_id <= m.prefix_end THEN m.head_ids END AS delete_ids
         FROM m JOIN {table} r ON r.id = m.max_id
         ORDER BY m.shard_scope, m.shard_identifier, m.region_name, m.first_id"
    )
}

pub(crate) fn claim(db: &mut DbConn<'_>, sql: &str) -> QueryResult<Vec<ClaimedShard>> {
    crate::__with_db!(db.reborrow(), |c| diesel::sql_query(sql).load(c))
}

pub(crate) fn load_groups(db: &mut DbConn<'_>, sql: &str) -> QueryResult<Vec<LoadedGroup>> {
    crate::__with_db!(db.reborrow(), |c| diesel::sql_query(sql).load(c))
}

pub(crate) fn exec(db: &mut DbConn<'_>, sql: &str) -> QueryResult<usize> {
    crate::__with_db!(db.reborrow(), |c| diesel::sql_query(sql).execute(c))
}

/// Executes `sql` with one bound text (placeholder 1).
pub(crate) fn exec_text(db: &mut DbConn<'_>, sql: &str, text: &str) -> QueryResult<usize> {
    crate::__with_db!(db.reborrow(), |c| diesel::sql_query(sql).bind::<Text, _>(text).execute(c))
}

pub(crate) fn count(db: &mut DbConn<'_>, sql: &str) -> QueryResult<i64> {
    let rows: Vec<Count> = crate::__with_db!(db.reborrow(), |c| diesel::sql_query(sql).load(c))?;
    Ok(rows.first().map_or(0, |r| r.n))
}

/// Deletes delivered groups: each group's rows up to its delivered id. One
/// statement on PostgreSQL (`unnest` of one array per column; the ids are
/// collected through the coalescing index into `= ANY(ARRAY(..))`, which keeps
/// the planner on index lookups), chunks of 200 groups on SQLite (its statements
/// have a size limit). Returns rows deleted.
pub(crate) fn delete_groups(db: &mut DbConn<'_>, direction: Direction, groups: &[GroupDelete]) -> QueryResult<usize> {
    let ids: Vec<i64> = groups.iter().filter_map(|g| g.ids.as_deref()).flatten().copied().collect();
    let looked_up: Vec<GroupDelete> = groups.iter().filter(|g| g.ids.is_none()).cloned().collect();
    Ok(delete_ids(db, direction, &ids)? + delete_by_key(db, direction, &looked_up)?)
}

/// Deletes rows by primary key: one statement on PostgreSQL (`id = ANY($1)`),
/// chunks of 500 ids on SQLite.
fn delete_ids(db: &mut DbConn<'_>, direction: Direction, ids: &[i64]) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    let (table, _) = table(direction);
    match db {
        #[cfg(feature = "postgres")]
        DbConn::Pg(c) => diesel::sql_query(format!("DELETE FROM {table} WHERE id = ANY($1)"))
            .bind::<diesel::sql_types::Array<BigInt>, _>(ids)
            .execute(*c),
        #[cfg(feature = "sqlite")]
        DbConn::Sqlite(c) => {
            let mut n = 0;
            for chunk in ids.chunks(500) {
                let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
                n += diesel::sql_query(format!("DELETE FROM {table} WHERE id IN ({})", list.join(","))).execute(*c)?;
            }
            Ok(n)
        }
    }
}

/// Deletes groups by their coalescing key, each up to its delivered id.
fn delete_by_key(db: &mut DbConn<'_>, direction: Direction, groups: &[GroupDelete]) -> QueryResult<usize> {
    if groups.is_empty() {
        return Ok(0);
    }
    let (table, region) = table(direction);
    match db {
        #[cfg(feature = "postgres")]
        DbConn::Pg(c) => {
            use diesel::sql_types::Array;
            let col = |f: fn(&GroupDelete) -> i64| groups.iter().map(f).collect::<Vec<i64>>();
            let scopes: Vec<i32> = groups.iter().map(|g| g.shard_scope).collect();
            let categories: Vec<i32> = groups.iter().map(|g| g.category).collect();
            let regions: Vec<&str> = groups.iter().map(|g| g.region_name.as_str()).collect();
            diesel::sql_query(format!(
                "DELETE FROM {table} WHERE id = ANY(ARRAY(
                     SELECT o.id FROM unnest($1, $2, $3, $4, $5, $6)
                         AS g(shard_scope, shard_identifier, region_name, category, object_identifier, max_id)
                     CROSS JOIN LATERAL (
                         SELECT o.id FROM {table} o
                         WHERE o.shard_scope = g.shard_scope AND o.shard_identifier = g.shard_identifier
                           AND {region} = g.region_name AND o.category = g.category
                           AND o.object_identifier = g.object_identifier AND o.id <= g.max_id
                     ) o
                 ))"
            ))
            .bind::<Array<Integer>, _>(scopes)
            .bind::<Array<BigInt>, _>(col(|g| g.shard_identifier))
            .bind::<Array<Text>, _>(regions)
            .bind::<Array<Integer>, _>(categories)
            .bind::<Array<BigInt>, _>(col(|g| g.object_identifier))
            .bind::<Array<BigInt>, _>(col(|g| g.max_id))
            .execute(*c)
        }
        #[cfg(feature = "sqlite")]
        DbConn::Sqlite(c) => {
            let mut n = 0;
            for chunk in groups.chunks(200) {
                let matches: Vec<String> = chunk
                    .iter()
                    .map(|g| {
                        format!(
                            "(o.shard_scope = {} AND o.shard_identifier = {} AND {region} = {} AND o.category = {}
                              AND o.object_identifier = {} AND o.id <= {})",
                            g.shard_scope,
                            g.shard_identifier,
                            lit(&g.region_name),
                            g.category,
                            g.object_identifier,
                            g.max_id
                        )
                    })
                    .collect();
                n += diesel::sql_query(format!("DELETE FROM {table} AS o WHERE {}", matches.join(" OR ")))
                    .execute(*c)?;
            }
            Ok(n)
        }
    }
}

/// Shards as keys.
pub(crate) type HeldKeys = std::collections::HashSet<(i32, i64, String)>;

/// Deletes the state rows still held by `token` and, of `groups`, those in the
/// shards it still held. Returns the shards it held and the rows deleted. Runs
/// inside the caller's transaction, so the lease check and the deletes commit
/// together.
pub(crate) fn finish_held(
    db: &mut DbConn<'_>,
    direction: Direction,
    token: &str,
    groups: &[GroupDelete],
) -> QueryResult<(HeldKeys, u64)> {
    let sql = format!(
        "DELETE FROM outbox_shard WHERE direction = {} AND lease_owner = {}
         RETURNING shard_scope, shard_identifier, region_name",
        direction.code(),
        lit(token)
    );
    let held: Vec<HeldShard> = crate::__with_db!(db.reborrow(), |c| diesel::sql_query(&sql).load(c))?;
    let held: HeldKeys = held.into_iter().map(|h| (h.shard_scope, h.shard_identifier, h.region_name)).collect();
    let mine: Vec<GroupDelete> = groups
        .iter()
        .filter(|g| held.contains(&(g.shard_scope, g.shard_identifier, g.region_name.clone())))
        .cloned()
        .collect();
    let deleted = delete_groups(db, direction, &mine)? as u64;
    Ok((held, deleted))
}

pub(crate) fn count_unhandled(
    db: &mut DbConn<'_>,
    direction: Direction,
    handled: &str,
) -> QueryResult<Vec<(i32, i64)>> {
    // `NOT IN (NULL)` matches nothing; with no handled category every row is unhandled.
    let condition = if handled == "NULL" { "1 = 1".to_string() } else { format!("category NOT IN ({handled})") };
    category_counts(db, direction, &condition)
}

/// Rows per category of one outbox matching `condition`.
pub(crate) fn category_counts(
    db: &mut DbConn<'_>,
    direction: Direction,
    condition: &str,
) -> QueryResult<Vec<(i32, i64)>> {
    let (table, _) = table(direction);
    let sql = format!(
        "SELECT category, CAST(COUNT(*) AS BIGINT) AS n_rows FROM {table} o WHERE {condition} GROUP BY category ORDER BY category"
    );
    let rows: Vec<CategoryCount> = crate::__with_db!(db.reborrow(), |c| diesel::sql_query(&sql).load(c))?;
    Ok(rows.into_iter().map(|r| (r.category, r.n_rows)).collect())
}

/// The highest row id of one outbox (0 when empty).
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn max_id(db: &mut DbConn<'_>, direction: Direction) -> QueryResult<i64> {
    let (table, _) = table(direction);
    count(db, &format!("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS n FROM {table}"))
}

/// Runs `f` in a write transaction: IMMEDIATE on SQLite (takes the write lock
/// up front, so two claimers never interleave), a plain one on PostgreSQL.
pub(crate) fn write_tx<T, E>(db: &mut DbConn<'_>, f: impl FnOnce(&mut DbConn<'_>) -> Result<T, E>) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    match db {
        #[cfg(feature = "sqlite")]
        DbConn::Sqlite(c) => c.immediate_transaction(|c| f(&mut DbConn::Sqlite(c))),
        #[cfg(feature = "postgres")]
        DbConn::Pg(c) => c.transaction(|c| f(&mut DbConn::Pg(c))),
    }
}
