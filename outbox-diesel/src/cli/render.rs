//! Readable tables for the terminal.

use std::fmt::Write as _;

use crate::backfill::Watermark;
use crate::inspect::{MessageRow, ObjectReport, QuarantinedGroup, ShardDepth, StatusReport};

/// Columns padded to their widest cell; the last column is not padded.
struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(headers: &[&'static str]) -> Self {
        Table { headers: headers.to_vec(), rows: Vec::new() }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, out: &mut String, empty: &str) {
        if self.rows.is_empty() {
            let _ = writeln!(out, "  {empty}");
            return;
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
            let cells: Vec<&str> = cells.collect();
            let mut text = String::from(" ");
            for (i, cell) in cells.iter().enumerate() {
                text.push(' ');
                if i + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    let _ = write!(text, "{cell:<width$} ", width = widths[i]);
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        };
        line(out, &mut self.headers.iter().copied());
        for row in &self.rows {
            line(out, &mut row.iter().map(String::as_str));
        }
    }
}

fn named(name: Option<&str>, id: impl std::fmt::Display) -> String {
    match name {
        Some(name) => format!("{name} ({id})"),
        None => id.to_string(),
    }
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `12.5s`.
fn age(seconds: f64) -> String {
    let s = seconds.max(0.0);
    let whole = s as u64;
    match whole {
        0..=59 => format!("{s:.1}s"),
        60..=3599 => format!("{}m {}s", whole / 60, whole % 60),
        3600..=86_399 => format!("{}h {}m", whole / 3600, whole % 3600 / 60),
        _ => format!("{}d {}h", whole / 86_400, whole % 86_400 / 3600),
    }
}

fn opt_age(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "-".to_string(), age)
}

fn region(name: &str) -> String {
    if name.is_empty() {
        "-".to_string()
    } else {
        name.to_string()
    }
}

fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}...", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

fn ts(t: &chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub(super) fn status(r: &StatusReport) -> String {
    let mut out = String::new();
    let by_direction: Vec<String> = r.pending_by_direction.iter().map(|(d, n)| format!("{d} {n}")).collect();
    let _ = writeln!(out, "outbox status ({}, {} UTC)", r.backend, ts(&r.generated_at));
    let _ = writeln!(
        out,
        "pending: {} rows ({}), oldest {}",
        r.total_pending,
        by_direction.join(", "),
        opt_age(r.oldest_age_seconds)
    );

    let _ = writeln!(out, "\nPENDING ROWS");
    let mut t = Table::new(&["DIRECTION", "SCOPE", "CATEGORY", "ROWS", "HELD BACK", "OLDEST"]);
    for g in &r.pending {
        t.row(vec![
            g.direction.to_string(),
            named(g.scope_name, g.scope),
            named(g.category_name, g.category),
            g.rows.to_string(),
            g.scheduled_later.to_string(),
            opt_age(g.oldest_age_seconds),
        ]);
    }
    t.render(&mut out, "none: the outboxes are empty");

    let _ = writeln!(out, "\nSHARDS IN BACKOFF");
    let mut t =
        Table::new(&["DIRECTION", "SCOPE", "SHARD", "REGION", "ATTEMPTS", "NEXT ATTEMPT", "ROWS", "LAST ERROR"]);
    for b in &r.backoff {
        let next = if b.retry_in_seconds > 0.0 { format!("in {}", age(b.retry_in_seconds)) } else { "due".into() };
        let error = match (&b.last_error, b.last_error_category) {
            (Some(e), Some(c)) => format!("[{}] {}", named(b.last_error_category_name, c), one_line(e, 100)),
            (Some(e), None) => one_line(e, 100),
            (None, _) => "-".to_string(),
        };
        t.row(vec![
            b.direction.to_string(),
            named(b.scope_name, b.scope),
            b.shard_identifier.to_string(),
            region(&b.region_name),
            b.attempts.to_string(),
            next,
            b.pending_rows.to_string(),
            error,
        ]);
    }
    t.render(&mut out, "none");

    let _ = writeln!(out, "\nQUARANTINED GROUPS");
    out.push_str(&quarantine(&r.quarantined));

    let _ = writeln!(out, "\nUNKNOWN CATEGORIES");
    match &r.unknown_categories {
        None => {
            let _ = writeln!(
                out,
                "  not checked: this program does not know the application's categories \
                 (pass --known-categories 0,2,5 or run the application's own status command)"
            );
        }
        Some(unknown) => {
            let mut t = Table::new(&["DIRECTION", "CATEGORY", "ROWS", "WHY"]);
            for u in unknown {
                let why = match u.reason {
                    crate::inspect::UnknownReason::NotDeclared => "not declared (written by a newer version?)",
                    crate::inspect::UnknownReason::Retired => "retired: no receiver will take these rows",
                };
                t.row(vec![
                    u.direction.to_string(),
                    named(u.category_name, u.category),
                    u.rows.to_string(),
                    why.into(),
                ]);
            }
            t.render(&mut out, "none");
        }
    }
    out
}

pub(super) fn quarantine(groups: &[QuarantinedGroup]) -> String {
    let mut out = String::new();
    let mut t = Table::new(&[
        "ID",
        "DIRECTION",
        "SCOPE",
        "SHARD",
        "REGION",
        "CATEGORY",
        "OBJECT",
        "ROWS",
        "ATTEMPTS",
        "BLOCKING",
        "QUARANTINED AT",
        "LAST ERROR",
    ]);
    for q in groups {
        t.row(vec![
            q.id.to_string(),
            q.direction.to_string(),
            named(q.scope_name, q.scope),
            q.shard_identifier.to_string(),
            region(&q.region_name),
            named(q.category_name, q.category),
            q.object_identifier.to_string(),
            q.row_count.to_string(),
            q.attempts.to_string(),
            if q.blocking { "yes" } else { "no" }.to_string(),
            ts(&q.quarantined_at),
            one_line(&q.last_error, 100),
        ]);
    }
    t.render(&mut out, "none");
    out
}

pub(super) fn shards(shards: &[ShardDepth]) -> String {
    let mut out = String::new();
    let mut t = Table::new(&["DIRECTION", "SCOPE", "SHARD", "REGION", "ROWS", "OLDEST", "ATTEMPTS", "NEXT ATTEMPT"]);
    for s in shards {
        t.row(vec![
            s.direction.to_string(),
            named(s.scope_name, s.scope),
            s.shard_identifier.to_string(),
            region(&s.region_name),
            s.rows.to_string(),
            opt_age(s.oldest_age_seconds),
            s.attempts.to_string(),
            s.next_attempt_at.as_ref().map_or_else(|| "-".to_string(), ts),
        ]);
    }
    t.render(&mut out, "none: the outboxes are empty");
    out
}

pub(super) fn messages(rows: &[MessageRow]) -> String {
    let mut out = String::new();
    let mut t = Table::new(&[
        "ID",
        "DIRECTION",
        "SCOPE",
        "SHARD",
        "REGION",
        "CATEGORY",
        "OBJECT",
        "AGE",
        "SCHEDULED FOR",
        "PAYLOAD",
    ]);
    for r in rows {
        t.row(vec![
            r.id.to_string(),
            r.direction.to_string(),
            named(r.scope_name, r.scope),
            r.shard_identifier.to_string(),
            region(&r.region_name),
            named(r.category_name, r.category),
            r.object_identifier.to_string(),
            age(r.age_seconds),
            ts(&r.scheduled_for),
            r.payload.as_ref().map_or_else(|| "-".to_string(), |p| one_line(&p.to_string(), 60)),
        ]);
    }
    t.render(&mut out, "no messages");
    out
}

pub(super) fn object(report: &ObjectReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "object {} of category {}: {} outbox row(s), {} quarantined group(s)\n",
        report.object_identifier,
        named(report.category_name, report.category),
        report.rows.len(),
        report.quarantined.len()
    );
    out.push_str(&messages(&report.rows));
    if !report.quarantined.is_empty() {
        let _ = writeln!(out, "\nQUARANTINED");
        out.push_str(&quarantine(&report.quarantined));
    }
    out
}

pub(super) fn watermarks(marks: &[Watermark]) -> String {
    let mut out = String::new();
    let mut t = Table::new(&["TABLE", "LOW ID", "VERSION"]);
    for w in marks {
        t.row(vec![w.table_name.clone(), w.low_id.to_string(), w.version.to_string()]);
    }
    t.render(&mut out, "no backfill has run");
    out
}
