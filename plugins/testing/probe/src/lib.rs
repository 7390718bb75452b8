//! `probe`: a test fixture for wirehook's sandbox and dispatch, never shipped.
//!
//! The text of the event picks what it does, so one component can exercise
//! every way a plugin can behave or misbehave: the variable `input` of a
//! flow, or the text of a received message.
//!
//! | command | behaviour |
//! |---|---|
//! | `loop` | spins forever (deadline / epoch interruption) |
//! | `grow` | allocates until memory runs out (memory cap) |
//! | `panic` | panics, which traps |
//! | `retry` / `drop` | fails with that `failure` |
//! | `none` | `ok(none)` |
//! | `env` | replies `{"env": N, "fs": B}`: what the sandbox leaks |
//! | `record` | logs `seen <delivery id>` through the host, then `ok(none)` |
//! | `fail-twice` | retries attempts 1 and 2; from attempt 3 acts as `record` |
//! | `fetch URL` | fetches URL; replies `{"status": S, "body": B}` or `{"error": E}` |
//! | `kv-get KEY` | replies `{"value": V}` (null when missing) or `{"error": E}` |
//! | `kv-set KEY N` | stores N bytes under KEY; replies `{"ok": true}` or `{"error": E}` |
//! | `kv-del KEY` | deletes KEY; replies `{"ok": true}` or `{"error": E}` |
//! | `kv-list PREFIX` | replies `{"keys": [...]}` or `{"error": E}` |
//! | `setting KEY` | replies `{"value": V}` (null when not set) |
//! | `chatter N` | logs N lines through the host; replies `{"ok": true}` |
//! | `reply STATUS TEXT` | replies with that status and TEXT as its JSON, valid or not |
//! | `sockets ADDR` | tries TCP to ADDR, a UDP socket and a name lookup; replies `{"tcp": B, "udp": B, "dns": B}`, each whether it worked |
//! | `count` | replies `{"count": N}`: how many events this instance has seen |
//! | `keep N` | allocates N MiB and keeps it for the instance's life; then as `count` |
//! | `configured` | logs `ran <plugin setting "name">`, then runs the command in its setting `command` |
//! | anything else | echoes the whole typed event as JSON |
//!
//! `configured` lets a route run several copies of the probe, each doing
//! what its `[plugin.NAME] settings` say, for the same event.
//!
//! Host capabilities are called only by the commands that test them.

wit_bindgen::generate!({ path: "../../../wit/plugin.wit", world: "plugin" });

use std::hint::black_box;

use serde_json::{Value, json};
use wirehook::plugin::types::{Contact, FlowEvent, FlowStage, Payload, Source};

struct Probe;

impl Guest for Probe {
    fn handle(e: Event) -> Result<Option<Reply>, Failure> {
        let configured;
        let mut command = command(&e.payload).map(str::trim);
        if command == Some("configured") {
            use wirehook::plugin::host;
            let name = host::setting("name").unwrap_or_default();
            host::log(host::Level::Info, &format!("ran {name}"));
            configured = host::setting("command").unwrap_or_default();
            command = Some(configured.as_str());
        }
        match command {
            Some("loop") => spin(),
            Some("grow") => hog_memory(),
            Some("panic") => panic!("probe asked to panic"),
            Some("retry") => Err(Failure::Retry("probe asked to retry".into())),
            Some("drop") => Err(Failure::Drop("probe asked to drop".into())),
            Some("none") => Ok(None),
            Some("env") => Ok(Some(reply(&sandbox_leaks()))),
            Some("record") => record(&e),
            Some("fail-twice") if e.source.attempt < 3 => Err(Failure::Retry(format!(
                "probe fails attempt {}",
                e.source.attempt
            ))),
            Some("fail-twice") => record(&e),
            Some(command) if is_capability(command) => Ok(Some(reply(&capability(command)))),
            Some(command) if command.starts_with("reply ") => Ok(Some(raw_reply(command))),
            Some("count") => Ok(Some(reply(&count()))),
            Some(command) if command.starts_with("keep ") => {
                let mib: usize = command["keep ".len()..].parse().unwrap_or(0);
                KEPT.lock().unwrap().push(black_box(vec![1u8; mib << 20]));
                Ok(Some(reply(&count())))
            }
            Some(command) if command.starts_with("sockets ") => {
                Ok(Some(reply(&sockets(&command["sockets ".len()..]))))
            }
            _ => Ok(Some(reply(&echo(&e)))),
        }
    }
}

fn is_capability(command: &str) -> bool {
    let verb = command.split_whitespace().next().unwrap_or("");
    [
        "fetch", "kv-get", "kv-set", "kv-del", "kv-list", "setting", "chatter",
    ]
    .contains(&verb)
        && command.contains(' ')
}

/// Runs a capability command such as `kv-get KEY`.
fn capability(command: &str) -> Value {
    use wirehook::plugin::host;
    let mut words = command.split_whitespace();
    let (verb, arg) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let outcome = |result: Result<Value, String>| match result {
        Ok(value) => value,
        Err(error) => json!({ "error": error }),
    };
    match verb {
        "fetch" => outcome(
            host::fetch(&host::OutgoingRequest {
                method: "GET".into(),
                url: arg.into(),
                headers: Vec::new(),
                body: None,
            })
            .map(|r| json!({ "status": r.status, "body": String::from_utf8_lossy(&r.body) })),
        ),
        "kv-get" => outcome(
            host::kv_get(arg)
                .map(|v| json!({ "value": v.map(|v| String::from_utf8_lossy(&v).into_owned()) })),
        ),
        "kv-set" => {
            let size: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(1);
            outcome(host::kv_set(arg, &vec![b'x'; size]).map(|()| json!({ "ok": true })))
        }
        "kv-del" => outcome(host::kv_delete(arg).map(|()| json!({ "ok": true }))),
        "kv-list" => outcome(host::kv_list(arg).map(|keys| json!({ "keys": keys }))),
        "setting" => json!({ "value": host::setting(arg) }),
        "chatter" => {
            for i in 0..arg.parse::<u32>().unwrap_or(0) {
                host::log(host::Level::Info, &format!("chatter {i}"));
            }
            json!({ "ok": true })
        }
        _ => unreachable!("checked by is_capability"),
    }
}

/// Leaves a trace a test can count: one log line per delivery.
fn record(e: &Event) -> Result<Option<Reply>, Failure> {
    wirehook::plugin::host::log(
        wirehook::plugin::host::Level::Info,
        &format!("seen {} attempt {}", e.source.delivery_id, e.source.attempt),
    );
    Ok(None)
}

fn command(payload: &Payload) -> Option<&str> {
    match payload {
        Payload::MessageReceived(message) => message.text.as_deref(),
        Payload::Flow(flow) | Payload::FlowCall(flow) => flow
            .variables
            .iter()
            .find(|(key, _)| key == "input")
            .map(|(_, value)| value.as_str()),
        _ => None,
    }
}

/// Events this instance has counted: a fresh instance starts at one.
static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Memory `keep` holds on to, so the instance's peak stays high.
static KEPT: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

fn count() -> Value {
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    json!({ "count": n })
}

/// `reply STATUS TEXT`: exactly that, for the host to judge.
fn raw_reply(command: &str) -> Reply {
    let mut words = command.splitn(3, ' ').skip(1);
    let status = words.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    Reply {
        status,
        json: words.next().unwrap_or("").to_owned(),
    }
}

/// Which kinds of socket the sandbox let the guest open: none should.
fn sockets(addr: &str) -> Value {
    use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
    let tcp = addr
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| TcpStream::connect_timeout(&a, std::time::Duration::from_secs(5)).is_ok());
    let udp = UdpSocket::bind("0.0.0.0:0").is_ok_and(|s| s.send_to(b"probe", addr).is_ok());
    let dns = ("localhost", 80).to_socket_addrs().is_ok();
    json!({ "tcp": tcp, "udp": udp, "dns": dns })
}

fn reply(json: &Value) -> Reply {
    Reply {
        status: 200,
        json: json.to_string(),
    }
}

fn spin() -> ! {
    // black_box keeps the optimiser from proving the loop does nothing.
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn hog_memory() -> ! {
    // Filling each block touches its pages, so the memory is really used,
    // not just reserved; the allocation failure at the cap aborts (traps).
    let mut hog = Vec::new();
    loop {
        hog.push(black_box(vec![1u8; 1 << 20]));
    }
}

/// How much of the outside world the sandbox lets through: both should be
/// nothing unless config grants it.
fn sandbox_leaks() -> Value {
    // vars_os rather than vars: vars panics on a non-UTF-8 variable.
    let env = std::env::vars_os().count();
    let fs = std::fs::read_dir("/").is_ok() || std::fs::read("/etc/passwd").is_ok();
    json!({ "env": env, "fs": fs })
}

fn echo(e: &Event) -> Value {
    json!({
        "kind": e.kind,
        "source": source(&e.source),
        "payload": payload(&e.payload),
        "raw_json": serde_json::from_str::<Value>(&e.raw_json)
            .unwrap_or_else(|_| Value::String(e.raw_json.clone())),
    })
}

fn source(s: &Source) -> Value {
    json!({
        "provider": s.provider,
        "route": s.route,
        "delivery_id": s.delivery_id,
        "received_at_ms": s.received_at_ms,
        "attempt": s.attempt,
    })
}

fn payload(p: &Payload) -> Value {
    match p {
        Payload::MessageReceived(m) => json!({
            "type": "message-received",
            "id": m.id,
            "contact": contact(&m.contact),
            "conversation_id": m.conversation_id,
            "text": m.text,
            "content_type": m.content_type,
            "media_url": m.media_url,
        }),
        Payload::MessageStatus(s) => json!({
            "type": "message-status",
            "message_id": s.message_id,
            "status": s.status,
            "timestamp_ms": s.timestamp_ms,
        }),
        Payload::Flow(f) => flow("flow", f),
        Payload::FlowCall(f) => flow("flow-call", f),
        Payload::Campaign(c) => json!({
            "type": "campaign",
            "campaign_id": c.campaign_id,
            "label": c.label,
            "contact": contact(&c.contact),
            "response": c.response,
            "chosen_option": c.chosen_option,
            "keyword": c.keyword,
        }),
        Payload::Order(o) => json!({
            "type": "order",
            "id": o.id,
            "number": o.number,
            "financial_status": o.financial_status,
            "fulfillment_status": o.fulfillment_status,
            "currency": o.currency,
            "total": o.total,
            "subtotal": o.subtotal,
            "tax": o.tax,
            "contact": contact(&o.contact),
            "line_items": o.line_items.iter().map(|l| json!({
                "id": l.id,
                "title": l.title,
                "sku": l.sku,
                "quantity": l.quantity,
                "price": l.price,
            })).collect::<Vec<_>>(),
        }),
        Payload::Other => json!({ "type": "other" }),
    }
}

fn flow(kind: &str, f: &FlowEvent) -> Value {
    let stage = match f.stage {
        FlowStage::Started => "started",
        FlowStage::Succeeded => "succeeded",
        FlowStage::Failed => "failed",
    };
    let variables: serde_json::Map<String, Value> = f
        .variables
        .iter()
        .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
        .collect();
    json!({
        "type": kind,
        "flow_id": f.flow_id,
        "flow_name": f.flow_name,
        "stage": stage,
        "contact": contact(&f.contact),
        "variables": variables,
    })
}

fn contact(c: &Contact) -> Value {
    json!({ "id": c.id, "phone": c.phone, "name": c.name })
}

export!(Probe);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_the_typed_event() {
        let e = Event {
            source: Source {
                provider: "goflow".into(),
                route: "orders".into(),
                delivery_id: "d1".into(),
                received_at_ms: 7,
                attempt: 2,
            },
            kind: "call_webhook".into(),
            payload: Payload::FlowCall(FlowEvent {
                flow_id: Some("f1".into()),
                flow_name: None,
                stage: FlowStage::Succeeded,
                contact: Contact {
                    id: None,
                    phone: Some("+1555".into()),
                    name: None,
                },
                variables: vec![("input".into(), "hi".into())],
            }),
            raw_json: "not json".into(),
        };
        let reply = Probe::handle(e).unwrap().unwrap();
        let echoed: Value = serde_json::from_str(&reply.json).unwrap();
        assert_eq!(
            echoed,
            json!({
                "kind": "call_webhook",
                "source": {"provider": "goflow", "route": "orders", "delivery_id": "d1", "received_at_ms": 7, "attempt": 2},
                "payload": {
                    "type": "flow-call", "flow_id": "f1", "flow_name": null, "stage": "succeeded",
                    "contact": {"id": null, "phone": "+1555", "name": null},
                    "variables": {"input": "hi"},
                },
                "raw_json": "not json",
            })
        );
    }
}
