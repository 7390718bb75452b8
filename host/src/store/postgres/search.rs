//! The delivery log's search on PostgreSQL: a generated `tsvector` of
//! every event's delivery id and body (its first 64 KiB) under a GIN
//! index, which needs no extension (`pg_trgm` comes with
//! postgresql-contrib, which a managed or minimal server may lack).
//!
//! A `tsvector` holds words, not substrings: the index finds the rows
//! with words that start with each word of the search, and an `ILIKE` on
//! those rows alone keeps the rows that contain the search's text as
//! typed. So on PostgreSQL a search matches text whose first word starts
//! a word of the body ("ann" finds "Ann@example.com", "nn" does not).

use tokio_postgres::types::ToSql;

use super::{PostgresStore, bounded};
use crate::store::listing::{self, Bind, Param};
use crate::store::{Filter, StoreError};

/// The words of `q` as a `to_tsquery` of prefixes, all required; `None`
/// when `q` has no word (punctuation alone), which the index cannot look
/// up.
fn prefixes(q: &str) -> Option<String> {
    listing::prefix_query(q, |word| format!("{word}:*"), " & ")
}

/// The condition that an event's delivery id or body contains `q`.
pub(super) fn search(q: &str, bind: Bind<'_>) -> String {
    let like = bind(Param::Text(listing::like_pattern(q)));
    let contains =
        format!("(delivery_id ILIKE {like} ESCAPE '\\' OR raw_json ILIKE {like} ESCAPE '\\')");
    match prefixes(q) {
        Some(words) => {
            let words = bind(Param::Text(words));
            format!("(search @@ to_tsquery('simple', {words}) AND {contains})")
        }
        None => contains,
    }
}

/// The listing's statement for `filter`, selecting `columns`, and the
/// values it binds.
pub(super) fn list_sql(
    filter: &Filter,
    columns: &str,
) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let (conditions, params) = listing::conditions(filter, |n| format!("${n}"), search);
    let limit = if filter.limit == 0 {
        String::new()
    } else {
        format!(" LIMIT {}", filter.limit)
    };
    let params = params
        .into_iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Param::Text(t) => Box::new(t),
                Param::Int(i) => Box::new(i),
            }
        })
        .collect();
    (
        format!("SELECT {columns} FROM events{conditions}{limit}"),
        params,
    )
}

/// `params` as a statement binds them.
pub(super) fn refs(params: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
}

impl PostgresStore {
    /// How PostgreSQL runs the listing of `filter`, one line of `EXPLAIN`
    /// a line: what the tests read to see that a listing uses an index.
    pub async fn query_plan(&self, filter: Filter) -> Result<Vec<String>, StoreError> {
        let (sql, params) = list_sql(&filter, super::log::RECORD);
        bounded(async {
            let client = self.client().await?;
            let rows = client
                .query(&format!("EXPLAIN {sql}"), &refs(&params))
                .await?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_words_reach_the_query_syntax() {
        assert_eq!(
            prefixes("Ann's 50% & !x").as_deref(),
            Some("Ann:* & s:* & 50:* & x:*")
        );
        assert_eq!(prefixes("%_|&"), None);
    }
}
