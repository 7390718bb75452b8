//! `wirehook init [DIR] [--provider goflow,meta]`: writes a commented
//! starter config with one route per named provider, each secret read
//! from an environment variable, and prints the next three commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Where to write `wirehook.toml` (and create `plugins/`).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The providers to route, comma-separated (see README.md, "Providers").
    #[arg(long, value_delimiter = ',', default_value = "goflow")]
    provider: Vec<String>,
}

/// A provider's starter route: the environment variables its secrets come
/// from (with what to put in each) and the route's further keys.
struct Template {
    id: &'static str,
    /// What sends it, for the comment above the route.
    about: &'static str,
    /// `(variable, what it holds)`: the first is the route's `secret`.
    env: &'static [(&'static str, &'static str)],
    /// Further `key = value` lines, each with its comment.
    extra: &'static str,
}

const TEMPLATES: &[Template] = &[
    Template {
        id: "goflow",
        about: "goflow / RapidPro \"Call Webhook\": the flow sends `Authorization: Token <secret>`",
        env: &[("GOFLOW_TOKEN", "the token the flow sends")],
        extra: "",
    },
    Template {
        id: "truora",
        about: "Truora WhatsApp Flows: the body is a JWT signed HS256 with the secret",
        env: &[("TRUORA_SECRET", "the secret Truora signs with")],
        extra: "",
    },
    Template {
        id: "messangi",
        about: "Messangi: the secret comes in X-Messangi-Token",
        env: &[("MESSANGI_TOKEN", "the token Messangi sends")],
        extra: "# header = \"X-Messangi-Token\"     # the token's header\n",
    },
    Template {
        id: "oneroute",
        about: "OneRoute: x-oneroute-signature, an HMAC-SHA512 of the body",
        env: &[("ONEROUTE_SECRET", "OneRoute's signing secret")],
        extra: "allow_ips = [\"174.138.104.128/32\"]  # OneRoute's published address\n",
    },
    Template {
        id: "whatsable",
        about: "WhatsAble: configure it to call this path with ?token=<secret>",
        env: &[("WHATSABLE_TOKEN", "the token WhatsAble sends")],
        extra: "# allow_ips = [\"203.0.113.0/24\"]   # WhatsAble's addresses, when you know them\n",
    },
    Template {
        id: "meta",
        about: "WhatsApp Cloud API: X-Hub-Signature-256 with the app secret; GET handshake with verify_token",
        env: &[
            ("META_APP_SECRET", "the Meta app's secret"),
            ("META_VERIFY_TOKEN", "the verify token you give Meta"),
        ],
        extra: "verify_token = \"env:META_VERIFY_TOKEN\"\n",
    },
    Template {
        id: "standard-webhooks",
        about: "any Standard Webhooks sender (Svix and others): webhook-signature with a whsec_ secret",
        env: &[("STANDARD_WEBHOOKS_SECRET", "the whsec_... signing secret")],
        extra: "",
    },
    Template {
        id: "github",
        about: "GitHub: X-Hub-Signature-256 with the webhook's secret (content type application/json)",
        env: &[("GITHUB_WEBHOOK_SECRET", "the webhook's secret")],
        extra: "",
    },
    Template {
        id: "shopify",
        about: "Shopify: X-Shopify-Hmac-Sha256 (base64) with the app's client secret; orders decode to typed orders",
        env: &[("SHOPIFY_WEBHOOK_SECRET", "the app's client secret")],
        extra: "",
    },
    Template {
        id: "slack",
        about: "Slack: X-Slack-Signature (v0) with the app's signing secret; events, slash commands, interactivity",
        env: &[("SLACK_SIGNING_SECRET", "the Slack app's signing secret")],
        extra: "",
    },
    Template {
        id: "stripe",
        about: "Stripe: Stripe-Signature (t=,v1=) with the endpoint's whsec_ signing secret",
        env: &[(
            "STRIPE_WEBHOOK_SECRET",
            "the endpoint's whsec_... signing secret",
        )],
        extra: "",
    },
    Template {
        id: "telegram",
        about: "Telegram Bot API: setWebhook's secret_token, sent in X-Telegram-Bot-Api-Secret-Token",
        env: &[(
            "TELEGRAM_SECRET_TOKEN",
            "the secret_token given to setWebhook",
        )],
        extra: "",
    },
    Template {
        id: "twilio",
        about: "Twilio: X-Twilio-Signature (HMAC-SHA1) with the auth token over the URL Twilio calls",
        env: &[("TWILIO_AUTH_TOKEN", "the account's auth token")],
        extra: "public_url = \"https://hooks.example.com/hooks/twilio\"  # the URL set in Twilio's console\n",
    },
    Template {
        id: "vonage",
        about: "Vonage Messages API signed webhooks: a Bearer JWT (HS256) with the signature secret",
        env: &[("VONAGE_SIGNATURE_SECRET", "the account's signature secret")],
        extra: "",
    },
    Template {
        id: "hmac",
        about: "any sender of a plain HMAC of the body in a header",
        env: &[("HMAC_SECRET", "the shared HMAC key")],
        extra: "header = \"X-Signature\"              # the signature's header\n\
                algorithm = \"sha256\"                # sha256 | sha512\n\
                encoding = \"hex\"                    # hex | base64\n\
                # prefix = \"sha256=\"               # text before the signature\n",
    },
];

fn template(id: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.id == id)
}

pub fn init(args: &InitArgs) -> anyhow::Result<ExitCode> {
    let mut chosen: Vec<&Template> = Vec::new();
    for id in &args.provider {
        let id = id.trim();
        let Some(found) = template(id) else {
            let known: Vec<_> = crate::config::provider::ProviderId::ALL
                .map(|id| id.as_str())
                .into_iter()
                .collect();
            anyhow::bail!(
                "--provider: unknown provider `{}` (known: {})",
                crate::text::escape(id),
                known.join(", ")
            );
        };
        if !chosen.iter().any(|t| t.id == found.id) {
            chosen.push(found);
        }
    }
    let config_path = args.dir.join("wirehook.toml");
    if config_path.exists() {
        anyhow::bail!(
            "{} exists; init writes a new config and never overwrites one",
            config_path.display()
        );
    }
    let plugins = args.dir.join("plugins");
    std::fs::create_dir_all(&plugins).with_context(|| format!("creating {}", plugins.display()))?;
    let text = config(&args.dir, &chosen)?;
    std::fs::write(&config_path, text)
        .with_context(|| format!("writing {}", config_path.display()))?;

    let ids: Vec<_> = chosen.iter().map(|t| t.id).collect();
    let exports: Vec<String> = chosen
        .iter()
        .flat_map(|t| t.env)
        .map(|(var, what)| format!("{var}='<{what}>'"))
        .collect();
    let shown = shell_quote(&config_path.display().to_string());
    println!(
        "Wrote {} (routes: {}). Next:\n\n  export {}\n  wirehook check --config {shown}\n  wirehook run --config {shown}",
        config_path.display(),
        ids.join(", "),
        exports.join(" ")
    );
    Ok(ExitCode::SUCCESS)
}

/// The starter config for `providers`, its paths under `dir`.
fn config(dir: &Path, providers: &[&Template]) -> anyhow::Result<String> {
    let data = toml_string(&dir.join("data"))?;
    let plugins = toml_string(&dir.join("plugins"))?;
    let ids: Vec<_> = providers.iter().map(|t| t.id).collect();
    let mut out = format!(
        "# wirehook starter config for: {ids}. README.md explains every key;\n\
         # `wirehook check --config <this file>` validates it.\n\
         # Paths are relative to the directory wirehook runs in.\n\
         # Secrets: \"env:VAR\" (below) or \"file:PATH\" (systemd credentials);\n\
         # never the secret itself in this file.\n\
         \n\
         [server]\n\
         listen = \"127.0.0.1:8080\"     # put a TLS proxy in front, or set tls (README, \"TLS\")\n\
         # metrics_listen = \"127.0.0.1:9464\"  # /metrics for Prometheus\n\
         \n\
         [storage]\n\
         path = {data}      # the event store and the compilation cache\n\
         \n\
         [plugins]\n\
         dir = {plugins}    # NAME.wasm here is the plugin NAME; `wirehook new NAME --lang rust` starts one\n",
        ids = ids.join(", "),
    );
    for t in providers {
        let (secret, _) = t.env[0];
        out.push_str(&format!(
            "\n# {about}.\n\
             [[route]]\n\
             name = \"{id}\"\n\
             path = \"/hooks/{id}\"\n\
             provider = \"{id}\"\n\
             secret = \"env:{secret}\"\n\
             {extra}\
             mode = \"queue\"        # 202 once stored; \"respond\" answers with the last plugin's reply\n\
             plugins = []          # e.g. [\"my-plugin\"]: each event goes to these, in order\n",
            about = t.about,
            id = t.id,
            extra = t.extra,
        ));
    }
    Ok(out)
}

/// A TOML basic string of `path`.
fn toml_string(path: &Path) -> anyhow::Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    if text.chars().any(char::is_control) {
        anyhow::bail!("{} has control characters", text.escape_debug());
    }
    Ok(format!(
        "\"{}\"",
        text.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// `text` as one POSIX-shell word.
fn shell_quote(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_provider_has_a_template() {
        for id in crate::config::provider::ProviderId::ALL
            .map(|id| id.as_str())
            .into_iter()
        {
            assert!(super::template(id).is_some(), "no starter route for `{id}`");
        }
    }
}
