//! `wirehook new` in each language and kind: the scaffolded project builds
//! with its own build script and the plugin it makes loads in the daemon,
//! and answers an event or, a provider plugin, accepts a request
//! `wirehook sign` signed with it and refuses a forged one.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{DaemonBuilder, Route, shared_cache_dir, target_dir, wirehook};

const TOKEN: &str = "scaffold-token";
const SECRET: &str = "scaffold-provider-secret";

/// A scaffolded project: its temporary dir and path.
struct Project {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

/// Scaffolds `name` (`wirehook new NAME ARGS…`), checks the WIT it got
/// (`wit`) and runs its build script with `env`: the project and what
/// the build script said.
fn scaffold_and_build(
    name: &str,
    args: &[&str],
    wit: &str,
    env: &[(&str, &Path)],
) -> (Project, String) {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join(name);
    let output = crate::harness::output(
        wirehook()
            .args(["new", name])
            .args(args)
            .arg("--dir")
            .arg(&project)
            .env("RUST_LOG", "off"),
        crate::harness::WAIT,
    );
    assert!(output.status.success(), "wirehook new: {output:?}");
    let wit = std::fs::read_to_string(project.join(wit)).unwrap();
    assert!(wit.contains("package wirehook:plugin@0.2.0;"));

    let mut build = Command::new(project.join("build"));
    for (key, value) in env {
        build.env(key, value);
    }
    let output = crate::harness::output(&mut build, crate::harness::COMPILE_WAIT);
    assert!(
        output.status.success(),
        "{name}/build failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    let project = Project {
        _dir: dir,
        path: project,
    };
    (project, said)
}

/// Scaffolds `name` in `lang`, runs its build script with `env`, and
/// checks the plugin's answer to a goflow call.
async fn scaffold_builds_and_answers(lang: &str, env: &[(&str, &Path)]) {
    let name = format!("greeter-{lang}");
    let (project, said) = scaffold_and_build(&name, &["--lang", lang], "wit/plugin.wit", env);
    let project = &project.path;
    assert!(project.join("events/call_webhook.json").is_file());

    // The project's own config runs it on its own sample, as its build
    // script says.
    let suggested = "--config wirehook.toml --provider goflow --payload events/call_webhook.json";
    let command = format!("wirehook call {name} {suggested}");
    assert!(said.lines().any(|l| l.trim() == command), "{said}");
    let called = crate::harness::output(
        wirehook()
            .args(["call", &name])
            .args(suggested.split(' '))
            .current_dir(project)
            .env("RUST_LOG", "off"),
        crate::harness::COMPILE_WAIT,
    );
    assert_eq!(
        String::from_utf8_lossy(&called.stdout),
        format!("{{\"kind\":\"call_webhook\",\"plugin\":\"{name}\"}}\n"),
        "{}",
        String::from_utf8_lossy(&called.stderr)
    );
    assert_eq!(called.status.code(), Some(0));

    let daemon = DaemonBuilder::new("")
        .route(
            Route::hook("hello", "goflow")
                .secret("env:T_GOFLOW")
                .plugins(&[&name])
                .respond(),
        )
        .plugin_file(&name, &project.join(format!("{name}.wasm")))
        .plugins_settings(&format!("cache_dir = {:?}", shared_cache_dir()))
        .env("T_GOFLOW", TOKEN)
        .start();
    let response = crate::harness::client()
        .post(daemon.url("/hooks/hello"))
        .header("authorization", format!("Token {TOKEN}"))
        .json(&serde_json::json!({"input": {"text": "hi"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply = response.text().await.unwrap();
    assert_eq!(
        reply,
        format!(r#"{{"kind":"call_webhook","plugin":"{name}"}}"#)
    );
}

/// Scaffolds provider plugin `name` in `lang`, runs its build script
/// with `env`, loads it as a route's `provider = "plugin:NAME"` and checks
/// that a request `wirehook sign` makes with it is accepted and a forged
/// one refused.
async fn provider_scaffold_builds_and_verifies(lang: &str, env: &[(&str, &Path)]) {
    let name = format!("verifier-{lang}");
    let args = ["--kind", "provider", "--lang", lang];
    let (project, said) = scaffold_and_build(&name, &args, "wit/provider.wit", env);
    let wasm = project.path.join(format!("{name}.wasm"));
    let suggested = format!(
        "wirehook sign --provider plugin:{name} --wasm {name}.wasm --secret env:SECRET event.json"
    );
    assert!(said.lines().any(|l| l.trim() == suggested), "{said}");
    // Compiled once here for every `wirehook sign` below, rather than by
    // each: the Python component takes a while.
    let output = crate::harness::output(
        wirehook().arg("compile").arg(&project.path),
        crate::harness::COMPILE_WAIT,
    );
    assert!(output.status.success(), "wirehook compile: {output:?}");

    let daemon = DaemonBuilder::new("")
        .route(
            Route::hook("verified", &format!("plugin:{name}"))
                .secret("env:T_SECRET")
                // What is checked here is the proof, not the speed of a
                // fresh instance on a busy test machine.
                .value("timeout_ms", "10000")
                .plugins(&["probe"])
                .respond(),
        )
        .plugin_file(&name, &wasm)
        .plugin("probe")
        .plugins_settings(&format!("cache_dir = {:?}", shared_cache_dir()))
        .env("T_SECRET", SECRET)
        .start();
    let payload = r#"{"type":"invoice.paid","id":"evt-1","amount":"12.50 €"}"#;
    let seen = crate::harness::provider::signed_accepted_forged_refused(
        &daemon,
        "/hooks/verified",
        (name.as_str(), wasm.as_path()),
        SECRET,
        payload,
    )
    .await;
    assert_eq!(seen["kind"], "invoice.paid", "{seen}");
    assert_eq!(seen["source"]["provider"], format!("plugin:{name}"));
    assert_eq!(seen["source"]["delivery_id"], "evt-1");
    assert_eq!(seen["raw_json"]["amount"], "12.50 €");
}

/// A target dir of its own, kept between runs: the project is outside
/// the workspace and must not take the workspace's build lock.
fn rust_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target")
}

/// The componentize-py that plugins/build installed, rather than a fresh
/// venv per run.
fn componentize_py() -> PathBuf {
    target_dir().join("toolchains/python/bin/componentize-py")
}

fn componentize_qjs() -> PathBuf {
    target_dir().join("toolchains/js/node_modules/.bin/componentize-qjs")
}

#[tokio::test]
async fn rust_scaffold_builds_and_answers() {
    scaffold_builds_and_answers("rust", &[("CARGO_TARGET_DIR", &rust_target())]).await;
}

#[tokio::test]
async fn python_scaffold_builds_and_answers() {
    scaffold_builds_and_answers("python", &[("COMPONENTIZE_PY", &componentize_py())]).await;
}

#[tokio::test]
async fn js_scaffold_builds_and_answers() {
    scaffold_builds_and_answers("js", &[("COMPONENTIZE_QJS", &componentize_qjs())]).await;
}

#[tokio::test]
async fn rust_provider_scaffold_builds_and_verifies() {
    provider_scaffold_builds_and_verifies("rust", &[("CARGO_TARGET_DIR", &rust_target())]).await;
}

#[tokio::test]
async fn python_provider_scaffold_builds_and_verifies() {
    provider_scaffold_builds_and_verifies("python", &[("COMPONENTIZE_PY", &componentize_py())])
        .await;
}

#[tokio::test]
async fn js_provider_scaffold_builds_and_verifies() {
    provider_scaffold_builds_and_verifies("js", &[("COMPONENTIZE_QJS", &componentize_qjs())]).await;
}
