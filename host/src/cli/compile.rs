//! `wirehook compile [DIR]`: compiles every `.wasm` in the plugins dir
//! ahead of time, writing `NAME.cwasm` beside `NAME.wasm` for this
//! binary's engine (see [`crate::runtime::aot`]), so that a start loads
//! plugins without compiling them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::runtime::aot::{self, Compiled};

#[derive(Debug, clap::Args)]
pub struct CompileArgs {
    /// The plugins dir.
    #[arg(default_value = "plugins/dist")]
    dir: PathBuf,
}

pub fn compile(args: &CompileArgs) -> anyhow::Result<ExitCode> {
    let engine = crate::runtime::compiling_engine().context("starting the plugin compiler")?;
    let mut components: Vec<PathBuf> = std::fs::read_dir(&args.dir)
        .with_context(|| format!("reading {}", args.dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm") && path.is_file())
        .collect();
    components.sort();
    let mut failed = false;
    for wasm in &components {
        let started = std::time::Instant::now();
        let artifact = aot::artifact_path(wasm);
        let line = match aot::compile(&engine, wasm) {
            Ok(Compiled::Written { bytes }) => format!(
                "{}: compiled in {} ms ({} KiB)",
                artifact.display(),
                started.elapsed().as_millis(),
                bytes.div_ceil(1024)
            ),
            Ok(Compiled::UpToDate) => format!("{}: up to date", artifact.display()),
            Err(e) => {
                failed = true;
                tracing::error!("{e}");
                format!("{}: failed: {e}", wasm.display())
            }
        };
        println!("{}", crate::text::escape(&line));
    }
    if components.is_empty() {
        println!("{}: no .wasm files", args.dir.display());
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
