//! The delivery log's listing query, written once for both backends: only
//! the filters given become conditions, so that each backend's planner
//! sees `status = ? AND id < ? ORDER BY id DESC` and walks an index
//! (dead letters', a route's, the primary key) rather than a scan. The
//! search (`q`) is each backend's own: a full-text index, not a `LIKE`
//! over every body.

use super::{Filter, Status};

/// A value bound to a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// Binds a value and returns its placeholder.
pub(crate) type Bind<'a> = &'a mut dyn FnMut(Param) -> String;

/// The SQL after `FROM events` (its `WHERE` and `ORDER BY`, not the
/// limit) and the values it binds, in order. `placeholder(n)` writes the
/// n-th (from 1) parameter's placeholder; `search(q, bind)` writes the
/// condition that an event's delivery id or body contains `q` (not
/// empty), binding its values with `bind`.
pub(crate) fn conditions(
    filter: &Filter,
    placeholder: impl Fn(usize) -> String,
    search: impl Fn(&str, Bind<'_>) -> String,
) -> (String, Vec<Param>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    let bind = |params: &mut Vec<Param>, value: Param| {
        params.push(value);
        placeholder(params.len())
    };
    // A literal from the enum, not a parameter: SQLite uses a partial
    // index (`WHERE status = 'dead'`) only for a query that names it.
    if let Some(status) = filter.status {
        clauses.push(format!("status = '{}'", Status::as_str(status)));
    }
    if let Some(route) = &filter.route {
        let p = bind(&mut params, Param::Text(route.clone()));
        clauses.push(format!("route = {p}"));
    }
    if let Some(kind) = &filter.kind {
        let p = bind(&mut params, Param::Text(kind.clone()));
        clauses.push(format!("kind = {p}"));
    }
    if let Some(since) = filter.since {
        let p = bind(&mut params, Param::Int(since.0 as i64));
        clauses.push(format!("received_at_ms >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = bind(&mut params, Param::Int(until.0 as i64));
        clauses.push(format!("received_at_ms < {p}"));
    }
    if let Some(before) = filter.before {
        let p = bind(&mut params, Param::Int(before));
        clauses.push(format!("id < {p}"));
    }
    if let Some(q) = filter.q.as_deref().filter(|q| !q.is_empty()) {
        clauses.push(search(q, &mut |value| bind(&mut params, value)));
    }
    let mut sql = String::new();
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(" ORDER BY id DESC");
    (sql, params)
}

/// A backend's full-text query for rows with a word starting with each
/// word of `q` (runs of letters and digits, as both backends' indexes
/// split text): each word written by `term`, joined by `and`. `None`
/// when `q` has no word (punctuation alone), which no index can look up.
pub(crate) fn prefix_query(q: &str, term: impl Fn(&str) -> String, and: &str) -> Option<String> {
    let terms: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(term)
        .collect();
    (!terms.is_empty()).then(|| terms.join(and))
}

/// `q` as a `LIKE` pattern matching it anywhere, `\` escaping the
/// pattern's own wildcards.
pub(crate) fn like_pattern(q: &str) -> String {
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_filters_given_become_conditions() {
        let filter = Filter {
            status: Some(Status::Dead),
            before: Some(9),
            ..Filter::default()
        };
        let (sql, params) = conditions(&filter, |n| format!("${n}"), |_, _| String::new());
        assert_eq!(sql, " WHERE status = 'dead' AND id < $1 ORDER BY id DESC");
        assert_eq!(params, vec![Param::Int(9)]);
    }

    #[test]
    fn the_search_escapes_like_wildcards() {
        assert_eq!(like_pattern("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}
