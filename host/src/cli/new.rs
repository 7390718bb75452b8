//! `wirehook new NAME --lang rust|python|js [--provider P]`: scaffolds a
//! plugin project (`--kind provider`: a provider plugin, see
//! [`provider_files`]) that builds and loads as is: its source, a `build`
//! script that makes `NAME.wasm`, the WIT it targets (copied from the one
//! this binary serves so the two always agree), sample payloads of the
//! provider under `events/`, and a `wirehook.toml` that `wirehook call`
//! runs the plugin on them with.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::ValueEnum;

/// The WIT this wirehook serves, as plugins should target it.
const WIT: &str = include_str!("../../../wit/plugin.wit");

/// The WIT of the `provider` world, as provider plugins should target it.
const PROVIDER_WIT: &str = include_str!("../../../wit/provider/provider.wit");

/// What the project makes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// A plugin that handles events.
    #[default]
    Plugin,
    /// A provider plugin that proves and decodes requests.
    Provider,
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin's name: lowercase letters, digits and `-`, starting with a
    /// letter. wirehook names a plugin after its `.wasm` file.
    name: String,
    /// The language to write it in.
    #[arg(long, value_enum)]
    lang: Lang,
    /// Where to create the project (default: ./NAME); must not exist or be
    /// empty.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The provider whose sample events go in `events/`.
    #[arg(long, default_value = "goflow", value_parser = provider)]
    provider: String,
    /// `plugin` handles events; `provider` proves and decodes requests
    /// (`provider = "plugin:NAME"` in a route).
    #[arg(long, value_enum, default_value_t = Kind::Plugin)]
    kind: Kind,
}

/// Sample payloads, as each provider sends them: provider, file name
/// (the event's `kind`), contents.
const SAMPLES: &[(&str, &str, &str)] = &[
    (
        "goflow",
        "call_webhook.json",
        include_str!("templates/events/goflow-call_webhook.json"),
    ),
    (
        "hmac",
        "order.created.json",
        include_str!("templates/events/hmac-order.created.json"),
    ),
    (
        "messangi",
        "campaign_interaction.json",
        include_str!("templates/events/messangi-campaign_interaction.json"),
    ),
    (
        "meta",
        "text.json",
        include_str!("templates/events/meta-text.json"),
    ),
    (
        "meta",
        "delivered.json",
        include_str!("templates/events/meta-delivered.json"),
    ),
    (
        "oneroute",
        "newMessage.json",
        include_str!("templates/events/oneroute-newMessage.json"),
    ),
    (
        "standard-webhooks",
        "order.created.json",
        include_str!("templates/events/standard-webhooks-order.created.json"),
    ),
    (
        "truora",
        "Success.json",
        include_str!("templates/events/truora-Success.json"),
    ),
    (
        "whatsable",
        "incoming_message.json",
        include_str!("templates/events/whatsable-incoming_message.json"),
    ),
    (
        "whatsable",
        "message_status.json",
        include_str!("templates/events/whatsable-message_status.json"),
    ),
];

/// A provider there are samples of.
fn provider(id: &str) -> Result<String, String> {
    if SAMPLES.iter().any(|(p, _, _)| *p == id) {
        return Ok(id.to_owned());
    }
    let mut known: Vec<&str> = SAMPLES.iter().map(|(p, _, _)| *p).collect();
    known.dedup();
    Err(format!("no provider `{id}`; one of {}", known.join(", ")))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Lang {
    Rust,
    Python,
    Js,
}

/// A file of a template: path in the project, contents, executable.
type TemplateFile = (&'static str, &'static str, bool);

impl Lang {
    fn files(self) -> &'static [TemplateFile] {
        match self {
            Self::Rust => &[
                (
                    "Cargo.toml",
                    include_str!("templates/rust/Cargo.toml"),
                    false,
                ),
                ("src/lib.rs", include_str!("templates/rust/lib.rs"), false),
                ("build", include_str!("templates/rust/build"), true),
                (
                    ".gitignore",
                    "/target/\n/*.wasm\n/*.wasm.tmp\n/.wirehook/\n",
                    false,
                ),
            ],
            Self::Python => &[
                ("app.py", include_str!("templates/python/app.py"), false),
                ("build", include_str!("templates/python/build"), true),
                (
                    ".gitignore",
                    "/.venv/\n__pycache__/\n/*.wasm\n/*.wasm.tmp\n/.wirehook/\n",
                    false,
                ),
            ],
            Self::Js => &[
                ("plugin.js", include_str!("templates/js/plugin.js"), false),
                (
                    "package.json",
                    include_str!("templates/js/package.json"),
                    false,
                ),
                ("build", include_str!("templates/js/build"), true),
                (
                    ".gitignore",
                    "/node_modules/\n/*.wasm\n/*.wasm.tmp\n/.wirehook/\n",
                    false,
                ),
            ],
        }
    }
}

pub fn new(args: &NewArgs) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    if !valid_name(name) {
        anyhow::bail!(
            "`{name}` is not a plugin name: use lowercase letters, digits and `-`, starting with a letter"
        );
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    let occupied = std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        anyhow::bail!("{} exists and is not empty", dir.display());
    }
    // Cargo names the built library after the crate, with underscores.
    let crate_name = name.replace('-', "_");
    if args.kind == Kind::Provider {
        return new_provider(args, &dir, &crate_name);
    }
    let samples: Vec<_> = SAMPLES
        .iter()
        .filter(|(p, _, _)| *p == args.provider)
        .collect();
    let render = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{provider}}", &args.provider)
            .replace("{{sample}}", samples[0].1)
    };
    let common: [TemplateFile; 2] = [
        ("README.md", include_str!("templates/README.md"), false),
        (
            "wirehook.toml",
            include_str!("templates/wirehook.toml"),
            false,
        ),
    ];
    for (path, text, executable) in args.lang.files().iter().chain(&common) {
        write(&dir.join(path), &render(text), *executable)?;
    }
    for (_, file, text) in &samples {
        write(&dir.join("events").join(file), text, false)?;
    }
    write(&dir.join("wit/plugin.wit"), WIT, false)?;
    println!(
        "created {dir}: run {build} to make {dir}/{name}.wasm, try it with `wirehook call` (see {dir}/README.md), then copy it into wirehook's plugins dir",
        dir = dir.display(),
        build = dir.join("build").display(),
    );
    Ok(ExitCode::SUCCESS)
}

/// The files of a provider plugin project in `lang`, besides its README.
fn provider_files(lang: Lang) -> &'static [TemplateFile] {
    match lang {
        Lang::Rust => &[
            (
                "Cargo.toml",
                include_str!("templates/rust/Cargo.toml"),
                false,
            ),
            (
                "src/lib.rs",
                include_str!("templates/provider/rust/lib.rs"),
                false,
            ),
            ("build", include_str!("templates/provider/rust/build"), true),
            (".gitignore", "/target/\n/*.wasm\n/*.wasm.tmp\n", false),
        ],
        Lang::Python => &[
            (
                "app.py",
                include_str!("templates/provider/python/app.py"),
                false,
            ),
            (
                "build",
                include_str!("templates/provider/python/build"),
                true,
            ),
            (
                ".gitignore",
                "/.venv/\n__pycache__/\n/*.wasm\n/*.wasm.tmp\n",
                false,
            ),
        ],
        Lang::Js => &[
            (
                "provider.js",
                include_str!("templates/provider/js/provider.js"),
                false,
            ),
            (
                "package.json",
                include_str!("templates/js/package.json"),
                false,
            ),
            ("build", include_str!("templates/provider/js/build"), true),
            (
                ".gitignore",
                "/node_modules/\n/*.wasm\n/*.wasm.tmp\n",
                false,
            ),
        ],
    }
}

fn new_provider(args: &NewArgs, dir: &Path, crate_name: &str) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    let render = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", crate_name)
    };
    let readme: TemplateFile = (
        "README.md",
        include_str!("templates/provider/README.md"),
        false,
    );
    for (path, text, executable) in provider_files(args.lang).iter().chain([&readme]) {
        write(&dir.join(path), &render(text), *executable)?;
    }
    write(&dir.join("wit/provider.wit"), PROVIDER_WIT, false)?;
    println!(
        "created {dir}: run {build} to make {dir}/{name}.wasm, then copy it into wirehook's plugins dir and name it in a route as `provider = \"plugin:{name}\"`",
        dir = dir.display(),
        build = dir.join("build").display(),
    );
    Ok(ExitCode::SUCCESS)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

fn write(path: &Path, text: &str, executable: bool) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    if executable {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;

    use super::{Kind, Lang, NewArgs, SAMPLES, new, valid_name};

    #[test]
    fn every_sample_decodes_as_its_provider_sends_it() {
        for (provider, file, text) in SAMPLES {
            let decode = crate::providers::decoder(provider).expect(provider);
            let events = decode(text.trim_ascii_end().as_bytes())
                .unwrap_or_else(|e| panic!("{provider} {file}: {e}"));
            let kinds: Vec<String> = events.into_iter().map(|e| e.kind + ".json").collect();
            assert_eq!(kinds, [*file], "{provider}");
        }
    }

    #[test]
    fn names_are_file_stems_every_toolchain_accepts() {
        for name in ["greeter", "order-status2", "a"] {
            assert!(valid_name(name), "{name}");
        }
        for name in ["", "Greeter", "2fa", "-x", "x-", "my_plugin", "a b", "é"] {
            assert!(!valid_name(name), "{name}");
        }
    }

    /// Every file under `dir`, recursively.
    fn files(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(files(&path));
            } else {
                out.push(path);
            }
        }
        out
    }

    #[test]
    fn every_kind_and_language_is_scaffolded_whole() {
        for kind in [Kind::Plugin, Kind::Provider] {
            for lang in [Lang::Rust, Lang::Python, Lang::Js] {
                let dir = tempfile::tempdir().unwrap();
                let project = dir.path().join("project");
                let args = NewArgs {
                    name: "my-hook".to_owned(),
                    lang,
                    dir: Some(project.clone()),
                    provider: "goflow".to_owned(),
                    kind,
                };
                new(&args).unwrap();
                let case = format!("{kind:?} in {lang:?}");
                let mode = std::fs::metadata(project.join("build"))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o111, 0o111, "{case}: build is not executable");
                let written = files(&project);
                for file in [".gitignore", "README.md"] {
                    assert!(written.contains(&project.join(file)), "{case}: no {file}");
                }
                let wit = if kind == Kind::Provider {
                    "wit/provider.wit"
                } else {
                    "wit/plugin.wit"
                };
                assert!(written.contains(&project.join(wit)), "{case}: no {wit}");
                for path in written {
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert!(
                        !text.contains("{{"),
                        "{case}: {} keeps a placeholder",
                        path.display()
                    );
                }
            }
        }
    }
}
