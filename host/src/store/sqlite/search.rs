//! The delivery log's listing on SQLite, and its search index: an FTS5
//! table of every event's delivery id and body, tokenized in trigrams, so
//! that a search for any text of three characters or more (a contact's
//! name, a phone number, part of a message or of a delivery id) reads
//! the index instead of every body.
//!
//! Why trigrams rather than words: the search is a substring search,
//! as the CLI's and the console's users expect of a log, and a trigram
//! phrase matches exactly the rows that contain the text, ignoring case.
//! The table is contentless (the text lives in `events` and
//! `event_bodies` already) and accepts deletes, so retention and purges
//! keep it in step through a trigger; rows enter it in the transaction
//! that stores their event.

use rusqlite::Connection;
use rusqlite::types::Value;

use crate::store::{Filter, StoreError, listing};

/// The index and the trigger that keeps it in step with deletions.
pub(super) const TABLES: &str = "
CREATE VIRTUAL TABLE IF NOT EXISTS event_search USING fts5(
    delivery_id, body, content = '', contentless_delete = 1, tokenize = 'trigram'
);
CREATE TRIGGER IF NOT EXISTS event_search_follow AFTER DELETE ON events
BEGIN
    DELETE FROM event_search WHERE rowid = old.id;
END;
";

/// Indexes the events of a file laid out before the index existed.
pub(super) const BACKFILL: &str = "
INSERT INTO event_search (rowid, delivery_id, body)
SELECT e.id, e.delivery_id, b.raw_json FROM events AS e JOIN event_bodies AS b USING (id);
";

/// Stores an event's text in the index, under the event's id.
pub(super) const INSERT: &str =
    "INSERT INTO event_search (rowid, delivery_id, body) VALUES (?1, ?2, ?3)";

/// The fewest characters a trigram index can look up.
const INDEXED_CHARS: usize = 3;

/// The condition that an event's delivery id or body contains `q`.
fn search(q: &str, bind: listing::Bind<'_>) -> String {
    if q.chars().count() >= INDEXED_CHARS {
        // One FTS5 string, so that no character of `q` is query syntax.
        let phrase = format!("\"{}\"", q.replace('"', "\"\""));
        let p = bind(listing::Param::Text(phrase));
        return format!("id IN (SELECT rowid FROM event_search WHERE event_search MATCH {p})");
    }
    // Too short for a trigram: a scan, stopped by the page's limit.
    let p = bind(listing::Param::Text(listing::like_pattern(q)));
    format!(
        "(delivery_id LIKE {p} ESCAPE '\\' OR EXISTS (SELECT 1 FROM event_bodies AS b
          WHERE b.id = events.id AND b.raw_json LIKE {p} ESCAPE '\\'))"
    )
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
    fn a_search_is_one_phrase_whatever_its_text() {
        let mut bound = Vec::new();
        let sql = search(r#"a" OR b*"#, &mut |p| {
            bound.push(p);
            "?1".into()
        });
        assert!(sql.contains("event_search MATCH ?1"), "{sql}");
        assert_eq!(bound, vec![listing::Param::Text(r#""a"" OR b*""#.into())]);
    }
}
