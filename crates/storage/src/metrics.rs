//! Latency of the SQL statements, through the `metrics` facade (docs/metrics.md).
//!
//! Every statement the stores run goes through the pool's metric hook, so one histogram covers
//! every store without wrapping each trait: the store is known from the statement's table and
//! the operation from its first word. The time is the statement's own, on a connection already
//! taken from the pool. The in-memory backend is not measured.

use std::sync::OnceLock;

use metrics::Histogram;

/// Store labels: the first table-name prefix that matches wins.
const STORES: [(&str, &str); 9] = [
    ("user", "users"),
    ("roster", "roster"),
    ("offline", "offline"),
    ("account_data", "account_data"),
    ("blocklist", "blocking"),
    ("federation", "federation"),
    ("audit", "audit"),
    ("policy", "policy"),
    ("evidence", "evidence"),
];

/// The distinct store labels, then `other` (statements without a table, such as locks).
const STORE_LABELS: [&str; 10] = [
    "users",
    "roster",
    "offline",
    "account_data",
    "blocking",
    "federation",
    "audit",
    "policy",
    "evidence",
    "other",
];

const OPERATIONS: [&str; 5] = ["select", "insert", "update", "delete", "other"];

/// One histogram per store and operation, registered at its first statement so that the
/// exposition shows only the pairs that happen.
static HISTOGRAMS: [[OnceLock<Histogram>; 5]; 10] = [const { [const { OnceLock::new() }; 5] }; 10];

fn histogram(store: usize, operation: usize) -> &'static Histogram {
    HISTOGRAMS[store][operation].get_or_init(|| {
        metrics::histogram!(
            "causerie_storage_query_duration_seconds",
            "store" => STORE_LABELS[store],
            "operation" => OPERATIONS[operation]
        )
    })
}

/// The pool's hook: called after each statement with its duration.
pub(crate) fn statement(info: &sea_orm::metric::Info<'_>) {
    let (store, operation) = classify(&info.statement.sql);
    histogram(store, operation).record(info.elapsed.as_secs_f64());
    if info.failed {
        metrics::counter!(
            "causerie_storage_query_errors_total",
            "store" => STORE_LABELS[store],
            "operation" => OPERATIONS[operation]
        )
        .increment(1);
    }
}

/// Indexes into [`STORE_LABELS`] and [`OPERATIONS`] for a statement.
fn classify(sql: &str) -> (usize, usize) {
    let sql = sql.trim_start();
    let verb_end = sql
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(sql.len());
    let verb = &sql[..verb_end];
    let (operation, table_after) = if verb.eq_ignore_ascii_case("select") {
        (0, find_keyword(sql, "from"))
    } else if verb.eq_ignore_ascii_case("insert") {
        (1, find_keyword(sql, "into"))
    } else if verb.eq_ignore_ascii_case("update") {
        (2, Some(verb_end))
    } else if verb.eq_ignore_ascii_case("delete") {
        (3, find_keyword(sql, "from"))
    } else {
        (4, None)
    };
    let store = table_after
        .map(|at| table_name(&sql[at..]))
        .and_then(|table| {
            STORES
                .iter()
                .find(|(prefix, _)| table.starts_with(prefix))
                .map(|(_, label)| *label)
        })
        .and_then(|label| STORE_LABELS.iter().position(|l| *l == label))
        .unwrap_or(STORE_LABELS.len() - 1);
    (store, operation)
}

/// The byte offset just after the first `keyword` standing as a word (any case).
fn find_keyword(sql: &str, keyword: &str) -> Option<usize> {
    let bytes = sql.as_bytes();
    let k = keyword.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    (0..bytes.len().checked_sub(k.len())? + 1).find_map(|i| {
        let fits = bytes[i..i + k.len()].eq_ignore_ascii_case(k)
            && (i == 0 || !word(bytes[i - 1]))
            && bytes.get(i + k.len()).is_none_or(|b| !word(*b));
        fits.then_some(i + k.len())
    })
}

/// The table name at the start of `rest` (after spaces and an opening quote), lowercase ASCII
/// only: anything else yields a name that matches no store.
fn table_name(rest: &str) -> &str {
    let rest = rest.trim_start().trim_start_matches(['"', '`', '[']);
    let end = rest
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(rest.len());
    &rest[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(sql: &str) -> (&'static str, &'static str) {
        let (store, operation) = classify(sql);
        (STORE_LABELS[store], OPERATIONS[operation])
    }

    #[test]
    fn statements_are_labelled_by_store_and_operation() {
        assert_eq!(
            labels(
                r#"SELECT "users"."id", "users"."username" FROM "users" WHERE "users"."domain" = ?"#
            ),
            ("users", "select")
        );
        assert_eq!(
            labels(
                r#"SELECT "mechanism" FROM "user_credentials" WHERE "user_id" = (SELECT "users"."id" FROM "users")"#
            ),
            ("users", "select")
        );
        assert_eq!(
            labels(r#"INSERT INTO "offline_messages" ("user_id", "stanza") VALUES ($1, $2)"#),
            ("offline", "insert")
        );
        assert_eq!(
            labels(r#"UPDATE "roster_versions" SET "version" = ?"#),
            ("roster", "update")
        );
        assert_eq!(
            labels(r#"DELETE FROM "offline_messages" WHERE "id" IN (1, 2)"#),
            ("offline", "delete")
        );
        assert_eq!(
            labels("insert into evidence (seq) values (1)"),
            ("evidence", "insert")
        );
        assert_eq!(
            labels("SELECT pg_advisory_xact_lock(42)"),
            ("other", "select")
        );
        assert_eq!(labels("BEGIN IMMEDIATE"), ("other", "other"));
        assert_eq!(labels(""), ("other", "other"));
        // A column whose name contains the keyword is not the keyword.
        assert_eq!(
            labels(r#"SELECT "from_jid" FROM "blocklist""#),
            ("blocking", "select")
        );
        assert_eq!(
            labels(r#"SELECT 1 FROM "unknown_table""#),
            ("other", "select")
        );
    }
}
