//! The throughput table: every line `wirehook-bench` measures, in the
//! order it measures and prints them, and what each one starts.

use wirehook_bench::report::{LIMIT, PROVIDER_PLUGIN, RESPOND};

use super::wirehook::{Isolation, Provider, QUEUE_GOFLOW, RESPOND_GOFLOW, RESPOND_HMAC, Setup};

/// Row 11: row 2 and its limit with this many connections.
pub(super) const WIDE_ROW: &str = "11";
pub(super) const WIDE_CONNECTIONS: usize = 256;

/// What a line of the table measures.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Limit,
    Wirehook(Setup),
    /// Row 2's route while `wirehook-attack` attacks.
    UnderAttack,
    /// The Express peer with this many workers.
    Express {
        workers: usize,
    },
    /// Row 4's route on PostgreSQL, with this many daemons.
    Postgres {
        instances: usize,
    },
}

/// One line of the throughput table as bench/README.md lists it.
#[derive(Debug)]
pub(super) struct Spec {
    pub id: &'static str,
    pub name: &'static str,
    pub kind: Kind,
}

/// The throughput table, in the order it is measured and printed: the
/// limit first.
pub(super) const TABLE: &[Spec] = &[
    Spec {
        id: LIMIT,
        name: "the limit: bare axum, reads the body, 200",
        kind: Kind::Limit,
    },
    Spec {
        id: RESPOND,
        name: "wirehook respond: goflow token + Rust order-status",
        kind: Kind::Wirehook(RESPOND_GOFLOW),
    },
    Spec {
        id: "9",
        name: "wirehook respond: row 2 traced, every span exported over OTLP",
        kind: Kind::Wirehook(Setup {
            traced: true,
            ..RESPOND_GOFLOW
        }),
    },
    Spec {
        id: "3",
        name: "wirehook respond: Truora JWT + Rust order-status",
        kind: Kind::Wirehook(Setup {
            provider: Provider::Truora,
            ..RESPOND_GOFLOW
        }),
    },
    Spec {
        id: PROVIDER_PLUGIN,
        name: "wirehook respond: built-in hmac + probe's echo",
        kind: Kind::Wirehook(RESPOND_HMAC),
    },
    Spec {
        id: PROVIDER_PLUGIN,
        name: "wirehook respond: hmac as a Rust provider plugin + probe's echo",
        kind: Kind::Wirehook(Setup {
            provider: Provider::HmacPlugin,
            ..RESPOND_HMAC
        }),
    },
    Spec {
        id: PROVIDER_PLUGIN,
        name: "wirehook respond: the same plugin, isolation = \"pooled\"",
        kind: Kind::Wirehook(Setup {
            provider: Provider::HmacPluginPooled,
            ..RESPOND_HMAC
        }),
    },
    Spec {
        id: "4",
        name: "wirehook queue: goflow, acked after group commit",
        kind: Kind::Wirehook(QUEUE_GOFLOW),
    },
    Spec {
        id: "8",
        name: "wirehook queue on PostgreSQL: goflow, one instance",
        kind: Kind::Postgres { instances: 1 },
    },
    Spec {
        id: "8",
        name: "wirehook queue on PostgreSQL: goflow, two instances",
        kind: Kind::Postgres { instances: 2 },
    },
    Spec {
        id: "5",
        name: "wirehook respond: Rust order-status, isolation = \"event\"",
        kind: Kind::Wirehook(Setup {
            isolation: Isolation::Event,
            ..RESPOND_GOFLOW
        }),
    },
    Spec {
        id: "5",
        name: "wirehook respond: Python order-status-py",
        kind: Kind::Wirehook(Setup {
            plugin: "order-status-py",
            ..RESPOND_GOFLOW
        }),
    },
    Spec {
        id: "5",
        name: "wirehook respond: JavaScript order-status-js",
        kind: Kind::Wirehook(Setup {
            plugin: "order-status-js",
            ..RESPOND_GOFLOW
        }),
    },
    Spec {
        id: "6",
        name: "Express peer, one process",
        kind: Kind::Express { workers: 1 },
    },
    Spec {
        id: "6",
        name: "Express peer, WORKERS=2 cluster",
        kind: Kind::Express { workers: 2 },
    },
    Spec {
        id: "7",
        name: "wirehook respond: goflow token + Rust order-status, under attack",
        kind: Kind::UnderAttack,
    },
    // The first line of row 11 is its limit.
    Spec {
        id: WIDE_ROW,
        name: "the limit, 256 connections",
        kind: Kind::Limit,
    },
    Spec {
        id: WIDE_ROW,
        name: "wirehook respond: row 2, 256 connections",
        kind: Kind::Wirehook(RESPOND_GOFLOW),
    },
];
