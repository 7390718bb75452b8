//! Config from TOML text: parsing either gives a config or problems by
//! key, and `Config::resolve` never panics on what parsing accepts.
//! `file:` values are left unread: a fuzzed path could name any file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wirehook::config::Config;
use figment::value::Value;
use wirehook::secret::SecretSource;

/// A provider key's value that names a file to read.
fn names_a_file(value: &Value) -> bool {
    match value {
        Value::String(_, text) => text.starts_with("file:"),
        Value::Dict(_, dict) => dict.values().any(names_a_file),
        Value::Array(_, items) => items.iter().any(names_a_file),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::from_toml(text) {
        Ok(config) => config,
        Err(problems) => {
            assert!(!problems.is_empty(), "refused without a problem");
            for problem in problems {
                let _ = problem.to_string();
            }
            return;
        }
    };
    let is_file = |source: &SecretSource| matches!(source, SecretSource::File(_));
    let reads_files = config.routes.iter().any(|route| {
        route.secret.as_ref().is_some_and(is_file) || route.keys.values().any(names_a_file)
    }) || config
        .plugin
        .values()
        .any(|plugin| plugin.settings.values().any(is_file));
    if reads_files {
        return;
    }
    for problem in config.resolve().err().unwrap_or_default() {
        assert!(!problem.key.is_empty(), "a problem without its key");
        let _ = problem.to_string();
    }
});
