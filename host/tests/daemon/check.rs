//! `wirehook check`: the shipped config passes; broken ones fail naming
//! the key.

use std::process::Output;

use crate::harness::{plugin_wasm, shared_cache_dir, wirehook, workspace_root};

fn check(config: &std::path::Path) -> Output {
    crate::harness::output(
        wirehook()
            .args(["check", "--config"])
            .arg(config)
            .current_dir(workspace_root())
            .env("GOFLOW_TOKEN", "check-token")
            .env("TRUORA_SECRET", "check-secret")
            // The shipped config loads every example plugin, Python and
            // JavaScript too: compile them once for all tests.
            .env("WIREHOOK_PLUGINS__CACHE_DIR", shared_cache_dir())
            .env("RUST_LOG", "off"),
        crate::harness::COMPILE_WAIT,
    )
}

#[test]
fn shipped_config_passes() {
    // The shipped plugins must exist for the shipped config to pass.
    plugin_wasm("order-status");
    plugin_wasm("router");
    let output = check(&workspace_root().join("config/wirehook.toml"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("ok (2 routes"), "{stdout}");
}

#[test]
fn an_unknown_environment_key_fails_saying_where_it_came_from() {
    let output = crate::harness::output(
        wirehook()
            .args(["check", "--config"])
            .arg(workspace_root().join("config/wirehook.toml"))
            .current_dir(workspace_root())
            .env("WIREHOOK_SERVER__LISTN", "127.0.0.1:9")
            .env("RUST_LOG", "off"),
        crate::harness::WAIT,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("server.listn: unknown field")
            && stdout.contains("(from the `WIREHOOK_` environment variable(s))"),
        "{stdout}"
    );
}

#[test]
fn broken_configs_fail_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(
        plugin_wasm("order-status"),
        plugins.join("order-status.wasm"),
    )
    .unwrap();
    let header = format!(
        "[storage]\npath = {:?}\n[plugins]\ndir = {:?}\n",
        dir.path().join("data"),
        plugins
    );
    let cases = [
        (
            "unknown provider",
            "[[route]]\nname = \"a\"\npath = \"/a\"\nprovider = \"carrier-pigeon\"\nsecret = \"env:GOFLOW_TOKEN\"\nplugins = [\"order-status\"]\n",
            "route[0].provider: unknown provider `carrier-pigeon`",
        ),
        (
            "no secret",
            "[[route]]\nname = \"a\"\npath = \"/a\"\nprovider = \"goflow\"\nplugins = [\"order-status\"]\n",
            "route[0].secret: the `goflow` provider needs a secret",
        ),
        (
            "missing plugin",
            "[[route]]\nname = \"a\"\npath = \"/a\"\nprovider = \"truora\"\nsecret = \"env:TRUORA_SECRET\"\nplugins = [\"crm\"]\n",
            "route[0].plugins: plugin `crm` has no",
        ),
        (
            "unset secret variable",
            "[[route]]\nname = \"a\"\npath = \"/a\"\nprovider = \"goflow\"\nsecret = \"env:WIREHOOK_TEST_NEVER_SET\"\nplugins = [\"order-status\"]\n",
            "route[0].secret: environment variable `WIREHOOK_TEST_NEVER_SET` is not set",
        ),
        (
            "unknown key",
            "[[route]]\nname = \"a\"\npath = \"/a\"\nprovider = \"goflow\"\nsecret = \"env:GOFLOW_TOKEN\"\nplugins = [\"order-status\"]\nmodee = \"respond\"\n",
            "route[0].modee: unknown field: found `modee`",
        ),
        (
            "reserved path",
            "[[route]]\nname = \"a\"\npath = \"/readyz\"\nprovider = \"goflow\"\nsecret = \"env:GOFLOW_TOKEN\"\nplugins = [\"order-status\"]\n",
            "route[0].path: `/readyz` is reserved for wirehook's own health checks",
        ),
        (
            "unreadable TLS certificate",
            "[server]\ntls = { cert = \"/nonexistent/cert.pem\", key = \"/nonexistent/key.pem\" }\n",
            "server.tls.cert: cannot read /nonexistent/cert.pem",
        ),
        (
            "empty pool",
            "[plugin.order-status]\npool_size = 0\n",
            "plugin.order-status.pool_size: must be at least 1",
        ),
        (
            "empty memory budget",
            "memory_budget_mb = 0\n",
            "plugins.memory_budget_mb: must be at least 1",
        ),
        (
            "misspelt memory budget",
            "memory_budget = 64\n",
            "plugins.memory_budget: unknown field",
        ),
        (
            "a plugin's empty memory budget",
            "[plugin.order-status]\nmemory_budget_mb = 0\n",
            "plugin.order-status.memory_budget_mb: must be at least 1",
        ),
        (
            "no idle time",
            "instance_idle_secs = 0\n",
            "plugins.instance_idle_secs: must be at least 1",
        ),
        (
            "bad log filter",
            "[log]\nlevel = \"wirehook=loud\"\n",
            "log.level: ",
        ),
    ];
    for (case, routes, expected) in cases {
        let path = dir.path().join("wirehook.toml");
        std::fs::write(&path, format!("{header}{routes}")).unwrap();
        let output = check(&path);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!output.status.success(), "{case}: passed\n{stdout}");
        assert!(stdout.contains(expected), "{case}: {stdout}");
        assert!(stdout.contains("wirehook.toml"), "{case}: {stdout}");
    }
}

#[test]
fn plugin_for_an_unsupported_wit_version_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    // Built against a copy of the WIT renumbered wirehook:plugin@0.3.0.
    std::fs::copy(plugin_wasm("next-wit"), plugins.join("next-wit.wasm")).unwrap();
    let path = dir.path().join("wirehook.toml");
    std::fs::write(
        &path,
        format!(
            "[storage]\npath = {:?}\n[plugins]\ndir = {:?}\n\n[[route]]\nname = \"a\"\npath = \"/a\"\nprovider = \"goflow\"\nsecret = \"env:GOFLOW_TOKEN\"\nplugins = [\"next-wit\"]\n",
            dir.path().join("data"),
            plugins
        ),
    )
    .unwrap();
    let output = check(&path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "passed\n{stdout}");
    let line = stdout
        .lines()
        .find(|line| line.contains("plugin `next-wit`: "))
        .unwrap_or_else(|| panic!("no problem for next-wit:\n{stdout}"));
    assert!(
        line.ends_with(
            "next-wit.wasm: plugin targets wirehook:plugin@0.3.0; this wirehook supports 0.1.0, 0.2.0"
        ),
        "{line}"
    );
}
