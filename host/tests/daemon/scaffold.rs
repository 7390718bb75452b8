//! `wirehook new` in each language: the scaffolded project builds with its
//! own build script and the plugin it makes loads in the daemon and
//! answers an event.

use std::path::Path;
use std::process::Command;

use crate::harness::{DaemonBuilder, Route, shared_cache_dir, target_dir, wirehook};

const TOKEN: &str = "scaffold-token";

/// Scaffolds `name` in `lang`, runs its build script with `env`, and
/// checks the plugin's answer to a goflow call.
async fn scaffold_builds_and_answers(lang: &str, env: &[(&str, &Path)]) {
    let name = format!("greeter-{lang}");
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join(&name);
    let output = crate::harness::output(
        wirehook()
            .args(["new", &name, "--lang", lang, "--dir"])
            .arg(&project)
            .env("RUST_LOG", "off"),
        crate::harness::WAIT,
    );
    assert!(output.status.success(), "wirehook new: {output:?}");
    assert!(project.join("events/call_webhook.json").is_file());
    let wit = std::fs::read_to_string(project.join("wit/plugin.wit")).unwrap();
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

    // The project's own config runs it on its own sample, as its build
    // script says.
    let said = String::from_utf8_lossy(&output.stdout);
    let suggested = "--config wirehook.toml --provider goflow --payload events/call_webhook.json";
    let command = format!("wirehook call {name} {suggested}");
    assert!(said.lines().any(|l| l.trim() == command), "{said}");
    let called = crate::harness::output(
        wirehook()
            .args(["call", &name])
            .args(suggested.split(' '))
            .current_dir(&project)
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

#[tokio::test]
async fn rust_scaffold_builds_and_answers() {
    // A target dir of its own, kept between runs: the project is outside
    // the workspace and must not take the workspace's build lock.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target");
    scaffold_builds_and_answers("rust", &[("CARGO_TARGET_DIR", &target)]).await;
}

#[tokio::test]
async fn python_scaffold_builds_and_answers() {
    // The componentize-py that plugins/build installed, rather than a
    // fresh venv per run.
    let tool = target_dir().join("toolchains/python/bin/componentize-py");
    scaffold_builds_and_answers("python", &[("COMPONENTIZE_PY", &tool)]).await;
}

#[tokio::test]
async fn js_scaffold_builds_and_answers() {
    let tool = target_dir().join("toolchains/js/node_modules/.bin/componentize-qjs");
    scaffold_builds_and_answers("js", &[("COMPONENTIZE_QJS", &tool)]).await;
}
