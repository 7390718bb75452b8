//! The delivery log's listing on SQLite, and its search index: an FTS5
//! table of the words of every event's delivery id and body.
//!
//! The search means what it means on PostgreSQL: the index finds the
//! rows with words that start with each word of the search, and a `LIKE`
//! on those rows alone keeps the rows that contain the search's text as
//! typed, ignoring ASCII case ("ann" finds "Ann@example.com", "nn" does
//! not). Text with no word in it (punctuation alone) scans, newest
//! first, until the page is full.
//!
//! Why words rather than trigrams, which would find any substring: the
//! respond log writes a row of the index for every request answered,
//! and a body's words are a few dozen tokens where its trigrams are one
//! per byte. The index keeps no positions (`detail = none`), which a
//! search of whole words and prefixes does not need, and merges its
//! segments once sixteen of a size have gathered rather than four. Each
//! of the three cuts what the writer spends on it (bench/README.md).
//!
//! The table is contentless (the text lives in `events` and
//! `event_bodies` already) and accepts deletes, so retention and purges
//! keep it in step through a trigger; rows enter it in the transaction
//! that stores their event.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension as _};

use crate::store::{Filter, StoreError, listing};

/// The index and the trigger that keeps it in step with deletions.
pub(super) const TABLES: &str = "
CREATE VIRTUAL TABLE IF NOT EXISTS event_search USING fts5(
    delivery_id, body, content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0', detail = none
);
CREATE TRIGGER IF NOT EXISTS event_search_follow AFTER DELETE ON events
BEGIN
    DELETE FROM event_search WHERE rowid = old.id;
END;
";

/// Settings kept in the index itself, set once when it is made.
pub(super) const SETTINGS: &str = "
INSERT INTO event_search (event_search, rank) VALUES ('automerge', 16);
";

/// Indexes the events of a file laid out before the index existed, or
/// before it took its current form.
pub(super) const BACKFILL: &str = "
INSERT INTO event_search (rowid, delivery_id, body)
SELECT e.id, e.delivery_id, b.raw_json FROM events AS e JOIN event_bodies AS b USING (id);
";

/// What [`TABLES`] says of the index's form, which an index made by an
/// earlier layout lacks.
const FORM: &str = "tokenize = 'unicode61 remove_diacritics 0', detail = none";

/// The index a file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Index {
    Missing,
    /// Made by an earlier layout: dropped and built again.
    Outdated,
    Current,
}

/// The form of the index in the file `conn` has open.
pub(super) fn index(conn: &Connection) -> rusqlite::Result<Index> {
    let sql: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'event_search'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    Ok(match sql {
        None => Index::Missing,
        Some(sql) if sql.contains(FORM) => Index::Current,
        Some(_) => Index::Outdated,
    })
}

/// Drops an outdated index and what keeps it in step, so that
/// [`TABLES`] makes it again.
pub(super) const DROP: &str = "
DROP TRIGGER IF EXISTS event_search_follow;
DROP TABLE IF EXISTS event_search;
";

/// Stores an event's text in the index, under the event's id.
pub(super) const INSERT: &str =
    "INSERT INTO event_search (rowid, delivery_id, body) VALUES (?1, ?2, ?3)";

/// The condition that an event's delivery id or body contains `q`.
fn search(q: &str, bind: listing::Bind<'_>) -> String {
    let p = bind(listing::Param::Text(listing::like_pattern(q)));
    let contains = format!(
        "(delivery_id LIKE {p} ESCAPE '\\' OR EXISTS (SELECT 1 FROM event_bodies AS b
          WHERE b.id = events.id AND b.raw_json LIKE {p} ESCAPE '\\'))"
    );
    match prefixes(q) {
        Some(query) => {
            let m = bind(listing::Param::Text(query));
            format!(
                "(id IN (SELECT rowid FROM event_search WHERE event_search MATCH {m}) AND {contains})"
            )
        }
        None => contains,
    }
}

/// The index's query for rows with a word starting with each word of
/// `q`, all required; `None` when `q` has no word. Each word is an FTS5
/// string, so that "AND" or "NEAR" in a search is a word, not syntax.
fn prefixes(q: &str) -> Option<String> {
    listing::prefix_query(q, |word| format!("\"{word}\"*"), " AND ")
}

/// The listing's statement for `filter` and the values it binds.
pub(super) fn list_sql(filter: &Filter) -> (String, Vec<Value>) {
    let (conditions, params) = listing::conditions(filter, |n| format!("?{n}"), search);
    let limit = if filter.limit == 0 {
        -1
    } else {
        filter.limit as i64
    };
    let params = params
        .into_iter()
        .map(|p| match p {
            listing::Param::Text(t) => Value::Text(t),
            listing::Param::Int(i) => Value::Integer(i),
        })
        .collect();
    (
        format!("SELECT * FROM events{conditions} LIMIT {limit}"),
        params,
    )
}

/// How SQLite runs the listing of `filter`: the detail column of
/// `EXPLAIN QUERY PLAN`, one step a line.
pub(super) fn plan(conn: &Connection, filter: &Filter) -> Result<Vec<String>, StoreError> {
    let (sql, params) = list_sql(filter);
    let steps = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?
        .query_map(rusqlite::params_from_iter(params), |row| row.get(3))?
        .collect::<Result<_, _>>()?;
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_asks_the_index_for_prefixes_of_its_words() {
        assert_eq!(
            prefixes("Ann's 50% NEAR x").as_deref(),
            Some(r#""Ann"* AND "s"* AND "50"* AND "NEAR"* AND "x"*"#)
        );
        assert_eq!(prefixes(r#"%_|&""#), None);
    }

    #[test]
    fn a_search_is_checked_against_its_text_whatever_the_index_says() {
        let mut bound = Vec::new();
        let sql = search(r#"a" OR b*"#, &mut |p| {
            bound.push(p.clone());
            format!("?{}", bound.len())
        });
        assert!(sql.contains("event_search MATCH ?2"), "{sql}");
        assert!(sql.contains("b.raw_json LIKE ?1"), "{sql}");
        assert_eq!(
            bound,
            vec![
                listing::Param::Text(r#"%a" OR b*%"#.into()),
                listing::Param::Text(r#""a"* AND "OR"* AND "b"*"#.into()),
            ]
        );
    }

    #[test]
    fn an_index_of_an_earlier_form_is_built_again_and_finds_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wirehook.db");
        let mut conn = Connection::open(&path).unwrap();
        super::super::schema::prepare(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO events (delivery_id, route, provider, kind, status,
                                 received_at_ms, updated_at_ms)
             VALUES ('d-1', 'orders', 'goflow', 'call', 'delivered', 1, 1);
             INSERT INTO event_bodies (id, raw_json) VALUES (1, '{\"name\":\"Ben Haggerty\"}');",
        )
        .unwrap();
        // The form an earlier layout made, with positions and no rows.
        conn.execute_batch(
            "DROP TRIGGER event_search_follow; DROP TABLE event_search;
             CREATE VIRTUAL TABLE event_search USING fts5(
                 delivery_id, body, content = '', contentless_delete = 1, tokenize = 'trigram');",
        )
        .unwrap();
        assert_eq!(index(&conn).unwrap(), Index::Outdated);
        super::super::schema::prepare(&mut conn).unwrap();
        assert_eq!(index(&conn).unwrap(), Index::Current);
        let found = |q: &str| -> Vec<i64> {
            let (sql, params) = list_sql(&Filter {
                q: Some(q.into()),
                ..Filter::default()
            });
            let mut statement = conn.prepare(&sql).unwrap();
            statement
                .query_map(rusqlite::params_from_iter(params), |row| row.get("id"))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(found("HAGGERTY"), vec![1]);
        assert_eq!(found("Ben Hag"), vec![1]);
        // Both words start words of the body; the text is not in it.
        assert_eq!(found("Hag Ben"), Vec::<i64>::new());
        // Not the start of a word.
        assert_eq!(found("aggerty"), Vec::<i64>::new());
    }
}
