//! What a right answer looks like, per row: a 2xx alone is not one (a
//! respond route whose plugin stopped replying answers 204, a queue route
//! that acknowledged nothing could still say 202), so every answer is
//! checked for its status and its body's shape, and an answer that is
//! wrong counts as an error of the row.

use serde::Deserialize;

/// The answer a row's requests must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Expect {
    /// 200 with `{"number": N, "status": S}`, N the order asked about
    /// and S its status in order-status's table (wirehook's respond
    /// routes and the Express peer).
    OrderStatus,
    /// 202 with `{"accepted": [id]}`: one delivery id, no duplicate
    /// (wirehook's queue routes; every request is new).
    Accepted,
    /// 200 with the `probe` fixture's echo of the event: kind
    /// `order.status`, payload `other`, and the raw JSON of the request,
    /// naming the order asked about (row 10, whose events are the generic
    /// `hmac` provider's, which order-status does not answer).
    Echo,
    /// 200 with any body: the limit, which reads the body and answers
    /// without looking at it.
    Ok,
}

/// The status order-status (and every peer) gives an order.
pub fn status_of(order: &str) -> &'static str {
    match order {
        "CU001" => "Shipped",
        "CU002" => "Pending",
        "CU003" => "Cancelled",
        _ => "Unknown",
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderStatus {
    number: String,
    status: String,
}

/// The parts of `probe`'s echo that must be the request's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Echo {
    kind: String,
    #[serde(rename = "source")]
    _source: serde::de::IgnoredAny,
    payload: EchoPayload,
    raw_json: EchoBody,
}

#[derive(Deserialize)]
struct EchoPayload {
    r#type: String,
}

#[derive(Deserialize)]
struct EchoBody {
    order: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Accepted {
    accepted: Vec<String>,
}

impl Expect {
    /// Checks one answer to a request about `order`; the error says what
    /// was wrong, short enough for a report.
    pub fn check(self, order: &str, status: u16, body: &[u8]) -> Result<(), String> {
        let wanted = match self {
            Self::OrderStatus | Self::Echo | Self::Ok => 200,
            Self::Accepted => 202,
        };
        if status != wanted {
            return Err(format!("{status} instead of {wanted}: {}", excerpt(body)));
        }
        let shape = match self {
            Self::Ok => return Ok(()),
            Self::OrderStatus => serde_json::from_slice::<OrderStatus>(body)
                .map_err(|e| e.to_string())
                .and_then(|answer| {
                    let right = answer.number == order && answer.status == status_of(order);
                    right
                        .then_some(())
                        .ok_or_else(|| format!("the answer is not order {order}'s status"))
                }),
            Self::Echo => serde_json::from_slice::<Echo>(body)
                .map_err(|e| e.to_string())
                .and_then(|echo| {
                    let right = echo.kind == "order.status"
                        && echo.payload.r#type == "other"
                        && echo.raw_json.order == order;
                    right
                        .then_some(())
                        .ok_or_else(|| format!("not the echo of a request about order {order}"))
                }),
            Self::Accepted => serde_json::from_slice::<Accepted>(body)
                .map_err(|e| e.to_string())
                .and_then(|answer| match answer.accepted.as_slice() {
                    [id] if !id.is_empty() => Ok(()),
                    ids => Err(format!("{} ids accepted instead of one", ids.len())),
                }),
        };
        shape.map_err(|why| format!("{status} with a wrong body ({why}): {}", excerpt(body)))
    }
}

/// The start of a body, printable.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.is_empty() {
        "empty body".to_owned()
    } else {
        format!("{text:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_status_answer_must_name_the_order_asked_and_its_status() {
        let check =
            |status, body: &str| Expect::OrderStatus.check("CU002", status, body.as_bytes());
        assert_eq!(
            check(200, r#"{"number":"CU002","status":"Pending"}"#),
            Ok(())
        );
        // A plugin that stopped replying: 2xx, but no answer.
        assert!(
            check(204, "")
                .unwrap_err()
                .starts_with("204 instead of 200")
        );
        assert!(check(200, r#"{"number":"CU001","status":"Shipped"}"#).is_err());
        assert!(check(200, r#"{"number":"CU002","status":"Unknown"}"#).is_err());
        assert!(check(200, r#"{"number":"CU002"}"#).is_err());
        assert!(check(200, r#"{"number":"CU002","status":"Pending","x":1}"#).is_err());
        assert!(check(200, "not json").is_err());
        assert!(check(202, r#"{"accepted":["a"]}"#).is_err());
    }

    #[test]
    fn an_acknowledgement_must_accept_one_event() {
        let check = |status, body: &str| Expect::Accepted.check("CU001", status, body.as_bytes());
        assert_eq!(check(202, r#"{"accepted":["d1"]}"#), Ok(()));
        assert!(check(200, r#"{"accepted":["d1"]}"#).is_err());
        assert!(check(202, r#"{"accepted":[]}"#).is_err());
        assert!(check(202, r#"{"accepted":[""]}"#).is_err());
        assert!(check(202, r#"{"accepted":[],"duplicates":["d1"]}"#).is_err());
        assert!(check(202, "").is_err());
    }

    #[test]
    fn an_echo_must_be_of_the_order_status_event_asked_about() {
        let check = |status, body: &str| Expect::Echo.check("CU003", status, body.as_bytes());
        let echo = |kind: &str, payload: &str, order: &str| {
            format!(
                r#"{{"kind":"{kind}","source":{{"provider":"hmac","delivery_id":"d1"}},"payload":{{"type":"{payload}"}},"raw_json":{{"type":"{kind}","order":"{order}"}}}}"#
            )
        };
        assert_eq!(check(200, &echo("order.status", "other", "CU003")), Ok(()));
        assert!(check(200, &echo("order.status", "other", "CU001")).is_err());
        assert!(check(200, &echo("hmac", "other", "CU003")).is_err());
        assert!(check(200, &echo("order.status", "flow", "CU003")).is_err());
        assert!(check(204, "").is_err());
        assert!(check(200, r#"{"number":"CU003","status":"Cancelled"}"#).is_err());
    }

    #[test]
    fn the_limit_needs_only_a_200() {
        assert_eq!(Expect::Ok.check("CU001", 200, b"anything"), Ok(()));
        assert!(Expect::Ok.check("CU001", 204, b"").is_err());
    }
}
