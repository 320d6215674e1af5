//! The inspector on crafted states (backlog, backoff, quarantine, unknown
//! categories), through the library report and through the command line's
//! `--json` output; and its errors. Both backends.

use outbox::inspect::{self, InspectError, StatusReport, UnknownReason};
use outbox::testing::TestDb;
use outbox::{Backend, CategoryInfo, Direction, OutboxConnection, PoisonPolicy, Registry, ScopeInfo};
use serde_json::Value;

static ORGANIZATION: ScopeInfo = ScopeInfo { id: 0, name: "Organization", declared_in: "app" };
static USER: ScopeInfo = ScopeInfo { id: 1, name: "User", declared_in: "app" };

const fn category(id: i32, name: &'static str, scope: Option<&'static ScopeInfo>, retired: bool) -> CategoryInfo {
    CategoryInfo {
        id,
        name,
        scope,
        retired,
        discard: false,
        transactional: false,
        max_attempts: None,
        on_poison: PoisonPolicy::Block,
        declared_in: "app",
    }
}

static USER_UPDATE: CategoryInfo = category(0, "UserUpdate", Some(&USER), false);
static TEAM_UPDATE: CategoryInfo = category(2, "TeamUpdate", Some(&ORGANIZATION), false);
static OLD_THING: CategoryInfo = category(4, "OldThing", None, true);

/// The application's registry (what `outbox::registry()` would hold).
fn app_registry() -> Registry {
    Registry::from_parts(vec![&ORGANIZATION, &USER], vec![&USER_UPDATE, &TEAM_UPDATE, &OLD_THING], vec![])
}

/// The standalone binary's registry: it links no application.
fn empty_registry() -> Registry {
    Registry::from_parts(vec![], vec![], vec![])
}

fn stamp(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The crafted state:
/// - region shard (0, 10): 3 TeamUpdate rows from 2020, held back (scheduled in
///   an hour), failing 3 times with "connection refused";
/// - region shard (0, 11): 1 TeamUpdate row; a blocking quarantined group of object 5;
/// - region shard (0, 12): 2 rows of category 99 (unknown to the application);
/// - region shard (0, 13): 1 row of the retired category 4;
/// - control shard (1, 7): 2 UserUpdate rows to `us`, 1 to `eu`.
fn craft<C: OutboxConnection>(conn: &mut C) {
    outbox::migrate(conn).unwrap();
    let now = chrono::Utc::now().naive_utc();
    let (old, recent, later) =
        (stamp(now - chrono::Duration::days(400)), stamp(now), stamp(now + chrono::Duration::hours(1)));
    let past = "2016-08-01 00:00:00";
    let region = |id: i64, shard: i64, category: i32, object: i64, scheduled_for: &str, added: &str| {
        format!(
            "INSERT INTO region_outbox (id, shard_scope, shard_identifier, category, object_identifier, payload, \
             scheduled_from, scheduled_for, date_added) VALUES ({id}, 0, {shard}, {category}, {object}, NULL, \
             '{added}', '{scheduled_for}', '{added}');"
        )
    };
    let control = |id: i64, region: &str, object: i64| {
        format!(
            "INSERT INTO control_outbox (id, shard_scope, shard_identifier, region_name, category, object_identifier, \
             payload, scheduled_from, scheduled_for, date_added) VALUES ({id}, 1, 7, '{region}', 0, {object}, \
             '{{\"name\": \"ada\"}}', '{recent}', '{past}', '{recent}');"
        )
    };
    let sql = [
        region(1, 10, 2, 100, &later, &old),
        region(2, 10, 2, 101, &later, &old),
        region(3, 10, 2, 100, &later, &old),
        region(4, 11, 2, 5, past, &recent),
        region(5, 12, 99, 1, past, &recent),
        region(6, 12, 99, 2, past, &recent),
        region(7, 13, 4, 3, past, &recent),
        control(8, "us", 42),
        control(9, "us", 42),
        control(10, "eu", 42),
        format!(
            "INSERT INTO outbox_shard (direction, shard_scope, shard_identifier, region_name, lease_owner, \
             lease_until, attempts, next_attempt_at, last_error, last_error_category) VALUES \
             (0, 0, 10, '', NULL, '{past}', 3, '{later}', 'receiver failed: connection refused', 2);"
        ),
        format!(
            "INSERT INTO outbox_quarantine (direction, shard_scope, shard_identifier, region_name, category, \
             object_identifier, payload, first_row_id, last_row_id, row_count, date_added, attempts, last_error, \
             quarantined_at, blocking) VALUES (0, 0, 11, '', 2, 5, NULL, 998, 1000, 3, '{old}', 10, \
             'team 5: constraint violation', '{recent}', TRUE);"
        ),
    ];
    conn.batch_execute(&sql.concat()).unwrap();
}

fn each_db(check: impl Fn(&TestDb, &mut dyn Inspect)) {
    for db in TestDb::all() {
        eprintln!("backend: {}", db.name());
        match db.backend() {
            Backend::Sqlite => check(&db, &mut db.sqlite_connection()),
            Backend::Postgres => check(&db, &mut db.pg_connection()),
        }
    }
}

/// The generic library calls, object-safe so each test body is written once.
trait Inspect {
    fn craft(&mut self);
    fn status(&mut self) -> Result<StatusReport, InspectError>;
    fn top(&mut self, n: usize) -> Vec<inspect::ShardDepth>;
    fn shard(&mut self, scope: i32, id: i64, region: Option<&str>) -> Vec<inspect::MessageRow>;
    fn object(&mut self, category: i32, id: i64) -> inspect::ObjectReport;
    fn retry(&mut self, id: i64) -> Result<inspect::RetriedGroup, InspectError>;
    fn discard(&mut self, id: i64) -> Result<inspect::QuarantinedGroup, InspectError>;
    fn sql(&mut self, sql: &str);
    fn rows(&mut self) -> Vec<outbox::StoredRow>;
}

impl<C: OutboxConnection> Inspect for C {
    fn craft(&mut self) {
        craft(self)
    }
    fn status(&mut self) -> Result<StatusReport, InspectError> {
        StatusReport::collect(self)
    }
    fn top(&mut self, n: usize) -> Vec<inspect::ShardDepth> {
        inspect::top_shards(self, n).unwrap()
    }
    fn shard(&mut self, scope: i32, id: i64, region: Option<&str>) -> Vec<inspect::MessageRow> {
        inspect::shard_messages(self, scope, id, region, 50).unwrap()
    }
    fn object(&mut self, category: i32, id: i64) -> inspect::ObjectReport {
        inspect::object_rows(self, category, id).unwrap()
    }
    fn retry(&mut self, id: i64) -> Result<inspect::RetriedGroup, InspectError> {
        inspect::quarantine_retry(self, id)
    }
    fn discard(&mut self, id: i64) -> Result<inspect::QuarantinedGroup, InspectError> {
        inspect::quarantine_discard(self, id)
    }
    fn sql(&mut self, sql: &str) {
        self.batch_execute(sql).unwrap()
    }
    fn rows(&mut self) -> Vec<outbox::StoredRow> {
        outbox::pending_rows(self).unwrap()
    }
}

/// Runs the command line in-process, as the `outbox` binary would.
fn cli(registry: &Registry, args: &[&str]) -> Result<String, outbox::cli::CliError> {
    let mut out = Vec::new();
    let args = std::iter::once("outbox").chain(args.iter().copied());
    outbox::cli::run_with_registry(args, registry, &mut out)?;
    Ok(String::from_utf8(out).expect("UTF-8 output"))
}

fn cli_json(registry: &Registry, url: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--json", "--database-url", url]);
    let text = cli(registry, &all).unwrap_or_else(|e| panic!("outbox {args:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("outbox {args:?} printed invalid JSON ({e}):\n{text}"))
}

#[test]
fn status_report_shows_backlog_backoff_quarantine_and_unknown_categories() {
    each_db(|_db, conn| {
        conn.craft();
        let report = conn.status().unwrap();
        assert_eq!(report.total_pending, 10);
        assert_eq!(report.pending_by_direction.get("region"), Some(&7));
        assert_eq!(report.pending_by_direction.get("control"), Some(&3));
        assert!(report.oldest_age_seconds.unwrap() > 399.0 * 86_400.0, "{:?}", report.oldest_age_seconds);

        let team = report.pending.iter().find(|g| (g.direction, g.scope, g.category) == (Direction::Region, 0, 2));
        let team = team.expect("TeamUpdate backlog");
        assert_eq!((team.rows, team.scheduled_later), (4, 3));
        assert_eq!(team.category_name, None, "no names without a registry");
        let user = report.pending.iter().find(|g| g.direction == Direction::Control).unwrap();
        assert_eq!((user.scope, user.category, user.rows), (1, 0, 3));
        assert_eq!(report.pending[0].rows, 4, "most rows first");

        assert_eq!(report.backoff.len(), 1);
        let b = &report.backoff[0];
        assert_eq!(
            (b.direction, b.scope, b.shard_identifier, b.attempts, b.pending_rows),
            (Direction::Region, 0, 10, 3, 3)
        );
        assert!(b.retry_in_seconds > 3_000.0 && b.retry_in_seconds <= 3_600.0, "{}", b.retry_in_seconds);
        assert_eq!(b.last_error.as_deref(), Some("receiver failed: connection refused"));
        assert_eq!(b.last_error_category, Some(2));

        assert_eq!(report.quarantined.len(), 1);
        let q = &report.quarantined[0];
        assert_eq!((q.shard_identifier, q.category, q.object_identifier, q.row_count, q.blocking), (11, 2, 5, 3, true));
        assert_eq!(report.unknown_categories, None, "unknown categories need a registry");

        // The application's registry names everything and finds the unknown rows.
        let named = report.clone().with_registry(&app_registry());
        let team = named.pending.iter().find(|g| g.category == 2).unwrap();
        assert_eq!((team.scope_name, team.category_name), (Some("Organization"), Some("TeamUpdate")));
        assert_eq!(named.backoff[0].last_error_category_name, Some("TeamUpdate"));
        assert_eq!(named.quarantined[0].category_name, Some("TeamUpdate"));
        let unknown = named.unknown_categories.expect("checked");
        let unknown: Vec<_> = unknown.iter().map(|u| (u.category, u.rows, u.reason)).collect();
        assert_eq!(unknown, vec![(4, 1, UnknownReason::Retired), (99, 2, UnknownReason::NotDeclared)]);

        // A tool without the registry can be told the known ids.
        let told = report.with_known_categories(&[0, 2, 4]);
        let unknown: Vec<_> = told.unknown_categories.unwrap().iter().map(|u| (u.category, u.rows)).collect();
        assert_eq!(unknown, vec![(99, 2)]);
    });
}

#[test]
fn shards_shard_and_object_queries() {
    each_db(|_db, conn| {
        conn.craft();
        let top = conn.top(2);
        assert_eq!(top.len(), 2);
        assert_eq!(
            (top[0].direction, top[0].scope, top[0].shard_identifier, top[0].rows),
            (Direction::Region, 0, 10, 3)
        );
        assert_eq!(top[0].attempts, 3);
        assert!(top[0].next_attempt_at.is_some());
        assert_eq!(top[1].rows, 2);
        assert_eq!(conn.top(100).iter().map(|s| s.rows).sum::<i64>(), 10);

        let messages = conn.shard(0, 10, None);
        assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), vec![3, 2, 1], "newest first");
        let us = conn.shard(1, 7, Some("us"));
        assert_eq!(us.iter().map(|m| m.id).collect::<Vec<_>>(), vec![9, 8]);
        assert_eq!(us[0].payload, Some(serde_json::json!({"name": "ada"})));
        assert!(conn.shard(0, 999, None).is_empty());

        let object = conn.object(2, 100);
        assert_eq!(object.rows.iter().map(|m| m.id).collect::<Vec<_>>(), vec![3, 1]);
        let object = conn.object(2, 5);
        assert_eq!((object.rows.len(), object.quarantined.len()), (1, 1));
        assert_eq!(conn.object(0, 42).rows.len(), 3);
    });
}

#[test]
fn quarantine_retry_moves_the_group_back_and_discard_drops_it() {
    each_db(|_db, conn| {
        conn.craft();
        let id = conn.status().unwrap().quarantined[0].id;
        let retried = conn.retry(id).unwrap();
        assert_eq!(retried.row_id, 1000, "back under its old highest id, keeping its place");
        let row = conn.rows().into_iter().find(|r| r.id == 1000).expect("row back in the outbox");
        assert_eq!((row.shard_identifier, row.category, row.object_identifier), (11, 2, 5));
        let after = conn.status().unwrap();
        assert!(after.quarantined.is_empty());
        assert_eq!(after.total_pending, 11);
        assert!(matches!(conn.retry(id), Err(InspectError::NoSuchQuarantine(i)) if i == id));

        conn.sql(
            "INSERT INTO outbox_quarantine (direction, shard_scope, shard_identifier, region_name, category, \
             object_identifier, payload, first_row_id, last_row_id, row_count, date_added, attempts, last_error, \
             quarantined_at, blocking) VALUES (0, 0, 10, '', 2, 100, NULL, 1, 1, 1, '2020-01-01 00:00:00', 10, \
             'boom', '2020-01-01 00:00:00', FALSE)",
        );
        let id = conn.status().unwrap().quarantined[0].id;
        let dropped = conn.discard(id).unwrap();
        assert_eq!((dropped.shard_identifier, dropped.object_identifier), (10, 100));
        let after = conn.status().unwrap();
        assert!(after.quarantined.is_empty());
        assert!(after.backoff.is_empty(), "the shard's failure state is cleared");
        assert_eq!(after.total_pending, 11, "discard leaves the outbox alone");
    });
}

#[test]
fn command_line_json_parses_with_numbers_as_numbers() {
    each_db(|db, conn| {
        conn.craft();
        let url = db.url().to_string();
        let urls = match db.backend() {
            Backend::Sqlite => vec![url.clone(), format!("sqlite://{url}")],
            Backend::Postgres => vec![url.clone()],
        };
        for url in &urls {
            let status = cli_json(&app_registry(), url, &["status"]);
            assert_eq!(status["total_pending"].as_i64(), Some(10), "{status}");
            assert_eq!(status["pending_by_direction"]["region"].as_i64(), Some(7));
            assert!(status["oldest_age_seconds"].as_f64().unwrap() > 399.0 * 86_400.0);
            assert_eq!(status["backoff"][0]["attempts"].as_i64(), Some(3));
            assert_eq!(status["backoff"][0]["direction"], "region");
            assert!(status["backoff"][0]["last_error"].as_str().unwrap().contains("connection refused"));
            assert_eq!(status["quarantined"][0]["blocking"], Value::Bool(true));
            assert_eq!(status["quarantined"][0]["category_name"], "TeamUpdate");
            let unknown = status["unknown_categories"].as_array().expect("checked with the app's registry");
            assert_eq!(unknown.len(), 2);
            assert_eq!(unknown[1]["category"].as_i64(), Some(99));
            assert_eq!(unknown[1]["reason"], "not_declared");
        }

        // The standalone binary: ids only, unknown categories only when told.
        let bare = cli_json(&empty_registry(), &url, &["status"]);
        assert_eq!(bare["unknown_categories"], Value::Null);
        assert_eq!(bare["pending"][0]["category_name"], Value::Null);
        let told = cli_json(&empty_registry(), &url, &["status", "--known-categories", "0,2"]);
        let ids: Vec<i64> =
            told["unknown_categories"].as_array().unwrap().iter().map(|u| u["category"].as_i64().unwrap()).collect();
        assert_eq!(ids, vec![4, 99]);

        let top = cli_json(&empty_registry(), &url, &["shards", "--top", "1"]);
        assert_eq!(top.as_array().unwrap().len(), 1);
        assert_eq!((top[0]["shard_identifier"].as_i64(), top[0]["rows"].as_i64()), (Some(10), Some(3)));

        let shard = cli_json(&app_registry(), &url, &["shard", "Organization", "10"]);
        let ids: Vec<i64> = shard.as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, vec![3, 2, 1]);
        let shard = cli_json(&empty_registry(), &url, &["shard", "1", "7", "--region", "eu"]);
        assert_eq!(shard[0]["payload"]["name"], "ada");

        let object = cli_json(&app_registry(), &url, &["object", "TeamUpdate", "5"]);
        assert_eq!(object["rows"].as_array().unwrap().len(), 1);
        assert_eq!(object["quarantined"][0]["row_count"].as_i64(), Some(3));

        let list = cli_json(&empty_registry(), &url, &["quarantine", "list"]);
        let id = list[0]["id"].as_i64().unwrap();
        let retried = cli_json(&empty_registry(), &url, &["quarantine", "retry", &id.to_string()]);
        assert_eq!(retried["row_id"].as_i64(), Some(1000));
        assert_eq!(cli_json(&empty_registry(), &url, &["quarantine", "list"]), serde_json::json!([]));

        let marks = cli_json(&empty_registry(), &url, &["backfills"]);
        assert_eq!(marks, serde_json::json!([]));
    });
}

#[test]
fn command_line_tables_are_readable() {
    each_db(|db, conn| {
        conn.craft();
        let text = cli(&app_registry(), &["status", "--database-url", db.url()]).unwrap();
        for expected in [
            "pending: 10 rows (control 3, region 7)",
            "PENDING ROWS",
            "Organization (0)",
            "TeamUpdate (2)",
            "SHARDS IN BACKOFF",
            "connection refused",
            "QUARANTINED GROUPS",
            "team 5: constraint violation",
            "UNKNOWN CATEGORIES",
            "not declared",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        let bare = cli(&empty_registry(), &["status", "--database-url", db.url()]).unwrap();
        assert!(bare.contains("not checked"), "{bare}");
        let top = cli(&empty_registry(), &["shards", "--top", "3", "--database-url", db.url()]).unwrap();
        assert!(top.lines().count() == 4, "header and 3 shards:\n{top}");
    });
}

#[test]
fn command_line_errors_are_clear() {
    let registry = app_registry();
    let err = |args: &[&str]| cli(&registry, args).unwrap_err().to_string();

    let bad = err(&["status", "--database-url", "mysql://localhost/db"]);
    assert!(bad.contains("bad database URL") && bad.contains("`mysql` is not supported"), "{bad}");
    let missing = err(&["status", "--database-url", "sqlite:///nonexistent/outbox.db"]);
    assert!(missing.contains("does not exist"), "{missing}");
    assert!(err(&["status"]).contains("no database given"));
    assert!(cli(&registry, &["status", "--bogus"]).is_err());

    for db in TestDb::all() {
        // A database nobody migrated.
        match db.backend() {
            Backend::Sqlite => drop(db.sqlite_connection()),
            Backend::Postgres => drop(db.pg_connection()),
        }
        let text = err(&["status", "--database-url", db.url()]);
        assert!(text.contains("no outbox tables"), "{text}");
        assert!(text.contains("outbox::migrate"), "{text}");
        assert!(text.contains("2026-12-01-000000_outbox_tables"), "{text}");
    }

    let db = TestDb::sqlite();
    craft(&mut db.sqlite_connection());
    let unknown = err(&["object", "Nope", "1", "--database-url", db.url()]);
    assert!(unknown.contains("unknown category `Nope`") && unknown.contains("TeamUpdate (2)"), "{unknown}");
    let unknown = err(&["object", "77", "1", "--database-url", db.url()]);
    assert!(unknown.contains("unknown category `77`"), "{unknown}");
    let unknown = err(&["shard", "Galaxy", "1", "--database-url", db.url()]);
    assert!(unknown.contains("unknown scope `Galaxy`") && unknown.contains("Organization (0)"), "{unknown}");
    let nameless = cli(&empty_registry(), &["shard", "Organization", "1", "--database-url", db.url()]).unwrap_err();
    assert!(nameless.to_string().contains("pass the scope's numeric id"), "{nameless}");
    let gone = cli(&empty_registry(), &["quarantine", "retry", "12345", "--database-url", db.url()]).unwrap_err();
    assert!(gone.to_string().contains("no quarantined group has id 12345"), "{gone}");
}
