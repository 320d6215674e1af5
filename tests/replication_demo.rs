//! The replication demo (`examples/replication`) end to end, on SQLite and
//! PostgreSQL: two regions and control, each its own database (a SQLite file, or
//! a PostgreSQL schema named in the URL's `search_path`).
//!
//! The demo runs in-process through its `try_run` / `run_with` functions: the
//! same code as the binary, minus `std::process::exit`.

#[allow(dead_code)]
#[path = "../examples/replication/app/mod.rs"]
mod app;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use outbox::testing::TestDb;
use serde_json::Value;

/// Three databases of one backend: r1, r2 and control.
struct Demo {
    backend: &'static str,
    dbs: Vec<TestDb>,
}

impl Demo {
    fn urls(&self) -> Vec<String> {
        self.dbs
            .iter()
            .map(|db| match db.backend() {
                outbox::Backend::Sqlite => format!("sqlite://{}", db.url()),
                outbox::Backend::Postgres => db.url().to_string(),
            })
            .collect()
    }

    /// `--region r1 --region r2 --control c`.
    fn silo_args(&self) -> Vec<String> {
        let urls = self.urls();
        vec![
            "--region".into(),
            urls[0].clone(),
            "--region".into(),
            urls[1].clone(),
            "--control".into(),
            urls[2].clone(),
        ]
    }

    /// Runs `replication COMMAND <silos> EXTRA...`; returns the exit status and stdout.
    fn run(&self, command: &str, extra: &[&str]) -> (i32, String) {
        self.run_stoppable(command, extra, &AtomicBool::new(false))
    }

    fn run_stoppable(&self, command: &str, extra: &[&str], stop: &AtomicBool) -> (i32, String) {
        let mut args = vec!["replication".to_string(), command.to_string()];
        args.extend(self.silo_args());
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut out = Vec::new();
        let code = app::try_run(args, &mut out, stop)
            .unwrap_or_else(|e| panic!("{} replication {command}: {e}", self.backend));
        (code, String::from_utf8(out).expect("utf-8 output"))
    }

    /// Runs a command that prints one JSON line and parses it.
    fn json(&self, command: &str, extra: &[&str]) -> (i32, Value) {
        let (code, out) = self.run(command, extra);
        let line = out.lines().last().unwrap_or_default();
        (code, serde_json::from_str(line).unwrap_or_else(|e| panic!("{command} printed {out:?}: {e}")))
    }

    fn verify(&self) -> (i32, Value) {
        self.json("verify", &[])
    }

    fn assert_consistent(&self, when: &str) {
        let (code, report) = self.verify();
        assert_eq!(report["consistent"], true, "{} {when}: {report}", self.backend);
        assert_eq!(code, 0, "{} {when}: verify exits 0 when consistent", self.backend);
        assert_eq!(report["pending_outbox_rows"], 0, "{} {when}: {report}", self.backend);
    }

    fn batch_execute(&self, silo: usize, sql: &str) {
        let db = &self.dbs[silo];
        match db.backend() {
            outbox::Backend::Sqlite => db.sqlite_connection().batch_execute(sql).expect("sql"),
            outbox::Backend::Postgres => db.pg_connection().batch_execute(sql).expect("sql"),
        }
    }
}

/// A demo on SQLite, and one on PostgreSQL when the server answers (mandatory in CI).
fn demos() -> Vec<Demo> {
    let mut demos = vec![Demo { backend: "sqlite", dbs: vec![TestDb::sqlite(), TestDb::sqlite(), TestDb::sqlite()] }];
    if let Some(first) = TestDb::postgres() {
        let dbs = vec![first, TestDb::postgres().expect("postgres"), TestDb::postgres().expect("postgres")];
        demos.push(Demo { backend: "postgres", dbs });
    }
    demos
}

fn migrated_demos() -> Vec<Demo> {
    let demos = demos();
    for demo in &demos {
        let (code, out) = demo.json("migrate", &[]);
        assert_eq!(code, 0);
        assert_eq!(out["migrated"], serde_json::json!(["r1", "r2", "control"]));
    }
    demos
}

#[test]
fn produce_work_verify_is_consistent() {
    for demo in migrated_demos() {
        let b = demo.backend;
        demo.assert_consistent("before anything was produced");

        let started = Instant::now();
        let (code, produced) = demo.json("produce", &["--ops", "400", "--seed", "11"]);
        assert_eq!(code, 0);
        assert_eq!(produced["ops"], 400, "{b}: {produced}");
        let done: u64 = produced["done"].as_object().expect("done").values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(done, 400, "{b}: every operation is accounted for: {produced}");
        for kind in ["team.create", "team.bulk_create", "member.add", "user.create", "token.create", "audit.event"] {
            assert!(produced["done"][kind].as_u64().unwrap_or(0) > 0, "{b}: {kind} never ran: {produced}");
        }
        let produce_ms = started.elapsed().as_millis();

        let (code, report) = demo.verify();
        assert_eq!(code, 1, "{b}: nothing delivered yet, so verify fails: {report}");
        assert_eq!(report["consistent"], false);
        assert!(report["missing"].as_u64().unwrap() > 0, "{b}: {report}");
        assert!(report["pending_outbox_rows"].as_u64().unwrap() > 0, "{b}: {report}");

        let started = Instant::now();
        let (code, worked) = demo.json("work", &["--workers", "2", "--until-idle"]);
        assert_eq!(code, 0, "{b}: {worked}");
        assert_eq!(worked["idle"], true);
        assert!(worked["delivered"].as_u64().unwrap() > 0, "{b}: {worked}");
        eprintln!(
            "{b}: produce 400 ops {produce_ms} ms; work --until-idle {} ms: {worked}",
            started.elapsed().as_millis()
        );
        demo.assert_consistent("after work --until-idle");

        // A second run builds on the data of the first; idle work is a no-op.
        let (code, _) = demo.json("produce", &["--ops", "200", "--seed", "12"]);
        assert_eq!(code, 0);
        assert_eq!(demo.json("work", &["--workers", "3", "--until-idle"]).0, 0);
        demo.assert_consistent("after a second produce and work");
        let (code, idle) = demo.json("work", &["--until-idle"]);
        assert_eq!((code, idle["delivered"].as_u64()), (0, Some(0)), "{b}: {idle}");
    }
}

#[test]
fn work_running_while_produce_runs() {
    for demo in migrated_demos() {
        let b = demo.backend;
        let stop = Arc::new(AtomicBool::new(false));
        let (code, worked) = std::thread::scope(|s| {
            let worker = s.spawn(|| demo.run_stoppable("work", &["--workers", "2"], &stop));
            for seed in 1..=3 {
                let (code, produced) = demo.json("produce", &["--ops", "150", "--seed", &seed.to_string()]);
                assert_eq!(code, 0, "{b}: {produced}");
            }
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
            worker.join().expect("work thread")
        });
        assert_eq!(code, 0, "{b}: work stops gracefully: {worked}");
        assert!(worked.contains("\"stopped\":true"), "{b}: {worked}");
        // Whatever the background workers had not reached, an idle run finishes.
        let (code, rest) = demo.json("work", &["--workers", "2", "--until-idle"]);
        assert_eq!(code, 0, "{b}: {rest}");
        demo.assert_consistent("after work ran concurrently with produce");
    }
}

#[test]
fn backfill_replicates_rows_that_predate_the_outboxes() {
    for demo in migrated_demos() {
        let b = demo.backend;
        // Rows written behind the models' back: no outbox rows.
        demo.batch_execute(
            0,
            "INSERT INTO teams (id, organization_id, name) VALUES (1, 1001, 'old-a'), (2, 1002, 'old-b'), (3, 1001, 'old-c');
             INSERT INTO organization_members (id, organization_id, user_id, role) VALUES (1, 1001, 1, 'owner');",
        );
        demo.batch_execute(1, "INSERT INTO teams (id, organization_id, name) VALUES (7, 2001, 'old-d');");
        demo.batch_execute(
            2,
            "INSERT INTO users (id, email, name, regions) VALUES (1, 'a@example.com', 'A', 'r1'), (2, 'b@example.com', 'B', 'r1,r2');
             INSERT INTO api_tokens (id, user_id, label, regions) VALUES (1, 2, 'ci', 'r1,r2');",
        );
        let (code, report) = demo.verify();
        assert_eq!(code, 1, "{b}: {report}");
        assert_eq!(report["missing"], 3 + 1 + 1 + 3 + 2, "{b}: {report}");
        assert_eq!(report["pending_outbox_rows"], 0, "{b}: {report}");

        let (code, backfilled) = demo.json("backfill", &["--batch-size", "2"]);
        assert_eq!(code, 0, "{b}: {backfilled}");
        let written: u64 = backfilled["backfilled"]
            .as_array()
            .expect("summaries")
            .iter()
            .map(|s| s["summary"]["rows_written"].as_u64().unwrap())
            .sum();
        assert_eq!(written, 3 + 1 + 1 + 2 + 1, "{b}: one backfill per existing model row: {backfilled}");

        assert_eq!(demo.json("work", &["--until-idle"]).0, 0);
        demo.assert_consistent("after backfill and work");

        // Done for this replication version: a second backfill writes nothing.
        let (_, again) = demo.json("backfill", &[]);
        for s in again["backfilled"].as_array().unwrap() {
            assert_eq!(s["summary"]["rows_written"], 0, "{b}: {again}");
        }
    }
}

#[test]
fn status_names_categories() {
    for demo in migrated_demos() {
        let b = demo.backend;
        assert_eq!(demo.json("produce", &["--ops", "60", "--seed", "5"]).0, 0);
        let (code, text) = demo.run("status", &[]);
        assert_eq!(code, 0);
        for want in ["== r1", "== r2", "== control", "TeamUpdate", "UserUpdate"] {
            assert!(text.contains(want), "{b}: status lacks {want:?}:\n{text}");
        }
        let (code, report) = demo.json("status", &["--json"]);
        assert_eq!(code, 0);
        let silos = report["silos"].as_array().expect("silos");
        assert_eq!(silos.len(), 3);
        let pending: i64 = silos.iter().map(|s| s["report"]["total_pending"].as_i64().unwrap()).sum();
        assert!(pending > 0, "{b}: {report}");
        let names: Vec<&str> = silos
            .iter()
            .flat_map(|s| s["report"]["pending"].as_array().unwrap())
            .filter_map(|g| g["category_name"].as_str())
            .collect();
        assert!(names.contains(&"AuditLogEvent") || names.contains(&"OrganizationMemberUpdate"), "{b}: {names:?}");
    }
}

#[test]
fn clear_errors_for_bad_urls_and_unmigrated_databases() {
    let stop = AtomicBool::new(false);
    let fail = |args: &[&str]| -> String {
        let args = std::iter::once("replication").chain(args.iter().copied());
        match app::try_run(args, &mut Vec::new(), &stop) {
            Ok(code) => panic!("expected an error, got exit status {code}"),
            Err(e) => e.to_string(),
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| format!("sqlite://{}", dir.path().join(name).display());

    let e = fail(&["verify", "--region", "mysql://localhost/x", "--control", &path("c.db")]);
    assert!(e.contains("bad database URL") && e.contains("mysql"), "{e}");

    let e = fail(&["produce", "--region", &path("missing.db"), "--control", &path("c.db"), "--ops", "1"]);
    assert!(e.contains("no SQLite database") && e.contains("replication migrate"), "{e}");

    // Files that exist but were never migrated.
    SqliteConnection::establish(&dir.path().join("r.db").to_string_lossy()).unwrap();
    SqliteConnection::establish(&dir.path().join("c.db").to_string_lossy()).unwrap();
    let e = fail(&["work", "--region", &path("r.db"), "--control", &path("c.db"), "--until-idle"]);
    assert!(e.contains("r1") && e.contains("outbox tables") && e.contains("replication migrate"), "{e}");

    let e = fail(&["verify", "--region", "postgres://nobody@127.0.0.1:1/none", "--control", &path("c.db")]);
    assert!(e.contains("cannot connect"), "{e}");

    let e = fail(&["produce", "--control", &path("c.db"), "--ops", "1"]);
    assert!(e.contains("--region"), "{e}");

    // The binary's entry point turns errors into exit status 2, never a panic.
    let args = ["replication", "verify", "--region", "nope://x", "--control", "sqlite://"];
    assert_eq!(app::run_with(args, &mut Vec::new(), &stop), 2);
}

/// The binary's own entry point: SIGTERM stops `work` gracefully, exit status 0.
#[cfg(unix)]
#[test]
fn sigterm_stops_work() {
    let demo = Demo { backend: "sqlite", dbs: vec![TestDb::sqlite(), TestDb::sqlite(), TestDb::sqlite()] };
    assert_eq!(demo.run("migrate", &[]).0, 0);
    assert_eq!(demo.run("produce", &["--ops", "50"]).0, 0);
    let mut args = vec!["replication".to_string(), "work".into()];
    args.extend(demo.silo_args());
    let worker = std::thread::spawn(move || app::run(args));
    std::thread::sleep(Duration::from_millis(800));
    signal_hook::low_level::raise(signal_hook::consts::SIGTERM).expect("raise SIGTERM");
    let started = Instant::now();
    while !worker.is_finished() {
        assert!(started.elapsed() < Duration::from_secs(20), "work did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(worker.join().unwrap(), 0);
    assert_eq!(demo.run("work", &["--until-idle"]).0, 0);
    demo.assert_consistent("after SIGTERM and an idle run");
}
