//! The delivery log's listing query, written once for both backends: only
//! the filters given become conditions, so that each backend's planner
//! sees `status = ? AND id < ? ORDER BY id DESC` and walks an index
//! (dead letters', the primary key) rather than a scan.

use super::{Filter, Status};

/// A value bound to a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// The SQL after `FROM events` (its `WHERE` and `ORDER BY`, not the
/// limit) and the values it binds, in order. `placeholder(n)` writes the
/// n-th (from 1) parameter's placeholder; `like` is the backend's
/// case-insensitive `LIKE`, and `body_has` the condition that an event's
/// body contains the pattern bound at a placeholder it is given.
pub(crate) fn conditions(
    filter: &Filter,
    placeholder: impl Fn(usize) -> String,
    like: &str,
    body_has: impl Fn(&str) -> String,
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
    if let Some(pattern) = filter.q_pattern() {
        let p = bind(&mut params, Param::Text(pattern));
        clauses.push(format!(
            "(delivery_id {like} {p} ESCAPE '\\' OR {})",
            body_has(&p)
        ));
    }
    let mut sql = String::new();
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(" ORDER BY id DESC");
    (sql, params)
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
        let (sql, params) = conditions(&filter, |n| format!("${n}"), "ILIKE", |_| String::new());
        assert_eq!(sql, " WHERE status = 'dead' AND id < $1 ORDER BY id DESC");
        assert_eq!(params, vec![Param::Int(9)]);
    }

    #[test]
    fn the_search_escapes_like_wildcards() {
        let filter = Filter {
            q: Some("50%_a\\".into()),
            ..Filter::default()
        };
        assert_eq!(filter.q_pattern().as_deref(), Some("%50\\%\\_a\\\\%"));
    }
}
