//! The wirehook rows: one route to one plugin, its provider (built in or
//! a provider plugin), mode and isolation, started on a site of its own
//! each round and measured.

use std::path::PathBuf;

use wirehook_bench::expect::Expect;
use wirehook_bench::report::Measured;
use wirehook_bench::targets::Site;

use super::{Bench, collector};

/// The provider of a wirehook row's route, and so the signed requests
/// its load sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Provider {
    Goflow,
    Truora,
    /// The built-in generic `hmac` provider with its defaults.
    Hmac,
    /// The same scheme as the `hmac-provider` plugin: the same requests.
    HmacPlugin,
    /// `HmacPlugin` with `isolation = "pooled"`: instances kept between
    /// requests rather than a fresh one each.
    HmacPluginPooled,
}

impl Provider {
    /// The route's `provider`.
    fn route(self) -> &'static str {
        match self {
            Self::Goflow => "goflow",
            Self::Truora => "truora",
            Self::Hmac => "hmac",
            Self::HmacPlugin | Self::HmacPluginPooled => "plugin:hmac-provider",
        }
    }

    /// The route's further keys.
    fn keys(self) -> &'static str {
        match self {
            Self::HmacPluginPooled => "isolation = \"pooled\"\n",
            _ => "",
        }
    }

    /// A name for the row's directory.
    fn label(self) -> &'static str {
        match self {
            Self::HmacPluginPooled => "plugin-hmac-provider-pooled",
            _ => self.route(),
        }
    }

    /// The load generator's `--provider`: whose requests it signs.
    pub(super) fn load(self) -> &'static str {
        match self {
            Self::Goflow => "goflow",
            Self::Truora => "truora",
            Self::Hmac | Self::HmacPlugin | Self::HmacPluginPooled => "hmac",
        }
    }

    /// The environment variable the route's secret is read from.
    fn secret_var(self) -> &'static str {
        match self {
            Self::Goflow => "BENCH_GOFLOW_TOKEN",
            Self::Truora => "BENCH_TRUORA_SECRET",
            Self::Hmac | Self::HmacPlugin | Self::HmacPluginPooled => "BENCH_HMAC_SECRET",
        }
    }

    /// The provider plugin the route loads, if it is one.
    pub(super) fn plugin(self) -> Option<&'static str> {
        matches!(self, Self::HmacPlugin | Self::HmacPluginPooled).then_some("hmac-provider")
    }
}

/// A route's `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Respond,
    Queue,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Respond => "respond",
            Self::Queue => "queue",
        }
    }
}

/// A plugin's `isolation`: instances reused from its pool, or a fresh
/// one per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isolation {
    Pooled,
    Event,
}

/// A wirehook row: one route to one plugin.
#[derive(Debug, Clone, Copy)]
pub(super) struct Setup {
    pub provider: Provider,
    pub mode: Mode,
    pub plugin: &'static str,
    pub isolation: Isolation,
    /// Every span exported to a loopback collector (`[telemetry]`).
    pub traced: bool,
}

impl Setup {
    /// The load generator's name for the row.
    pub(super) fn label(&self) -> String {
        format!(
            "{}-{}-{}",
            self.mode.as_str(),
            self.provider.label(),
            self.plugin
        )
    }

    /// What every answer of the row must be.
    pub(super) fn expect(&self) -> Expect {
        match (self.mode, self.plugin) {
            (Mode::Queue, _) => Expect::Accepted,
            (Mode::Respond, "probe") => Expect::Echo,
            (Mode::Respond, _) => Expect::OrderStatus,
        }
    }
}

/// Row 2's route: the respond row the attacked row compares with.
pub(super) const RESPOND_GOFLOW: Setup = Setup {
    provider: Provider::Goflow,
    mode: Mode::Respond,
    plugin: "order-status",
    isolation: Isolation::Pooled,
    traced: false,
};

/// Row 4's route: row 2's, queued.
pub(super) const QUEUE_GOFLOW: Setup = Setup {
    mode: Mode::Queue,
    ..RESPOND_GOFLOW
};

/// Row 10's route: the generic `hmac` provider's events are `other`,
/// which order-status does not answer; `probe` echoes them, so that each
/// answer can be checked against its request.
pub(super) const RESPOND_HMAC: Setup = Setup {
    provider: Provider::Hmac,
    plugin: "probe",
    ..RESPOND_GOFLOW
};

/// The components a wirehook row copies into its plugins dir: its plugin
/// and, for a provider plugin's row, that provider.
pub(super) type Components = Vec<(String, PathBuf)>;

impl Bench<'_> {
    /// One round of a wirehook row, on a site of its own: a queue row's
    /// store must not start with the last round's backlog.
    pub(super) fn wirehook_row(
        &self,
        id: &str,
        round: usize,
        setup: &Setup,
        components: &[(String, PathBuf)],
    ) -> anyhow::Result<Measured> {
        let dir = self.site_dir(&format!("row-{id}"), round, setup);
        let site = Site::create(&dir, components, &self.routes(setup)?, Some(&self.cache()))?;
        let measured = {
            let running = site.start(&self.paths.exe("wirehook"))?;
            let mut measured = self.measure(
                &running,
                &setup.label(),
                setup.provider.load(),
                setup.expect(),
                &["/hooks/orders"],
            )?;
            if setup.mode == Mode::Queue {
                measured.backlog = Some(site.backlog()?);
            }
            measured
        };
        // A queue row's store holds every event of its round.
        let _ = std::fs::remove_dir_all(&dir);
        Ok(measured)
    }

    /// The config of `setup`'s site after its `[server]`: the route and
    /// what the row changes of the defaults.
    pub(super) fn routes(&self, setup: &Setup) -> anyhow::Result<String> {
        let mut routes = format!(
            "[[route]]\nname = \"orders\"\npath = \"/hooks/orders\"\nprovider = \"{}\"\n\
             secret = \"env:{}\"\nplugins = [\"{}\"]\nmode = \"{}\"\n{}",
            setup.provider.route(),
            setup.provider.secret_var(),
            setup.plugin,
            setup.mode.as_str(),
            setup.provider.keys()
        );
        if setup.mode == Mode::Queue {
            // The row measures acknowledgement: the workers deliver on
            // the same cores meanwhile but fall behind, and the default
            // depth would turn the rest of the run into 503s.
            routes.push_str("\n[delivery]\nmax_queue_depth = 100000000\n");
        }
        if setup.isolation == Isolation::Event {
            routes.push_str(&format!(
                "\n[plugin.{}]\nisolation = \"event\"\n",
                setup.plugin
            ));
        }
        if setup.traced {
            routes.push_str(&format!(
                "\n[telemetry]\notlp_endpoint = \"http://{}\"\nsample_ratio = 1.0\n",
                collector::address()?
            ));
        }
        Ok(routes)
    }

    /// A fresh directory for one round of `setup` under `prefix`.
    pub(super) fn site_dir(&self, prefix: &str, round: usize, setup: &Setup) -> PathBuf {
        self.scratch.join(format!(
            "{prefix}-{}-{}-{round}",
            setup.provider.label().replace(':', "-"),
            setup.plugin
        ))
    }

    /// The compilation cache every wirehook site shares.
    pub(super) fn cache(&self) -> PathBuf {
        self.scratch.join("cache")
    }

    /// The components `setup` needs, or the table's reason for the
    /// absence of one.
    pub(super) fn components(&self, setup: &Setup) -> Result<Components, String> {
        let mut components = vec![(setup.plugin.to_owned(), self.paths.plugin(setup.plugin)?)];
        if let Some(provider) = setup.provider.plugin() {
            components.push((provider.to_owned(), self.paths.plugin(provider)?));
        }
        Ok(components)
    }
}
