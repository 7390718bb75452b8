//! jsjson's numbers against ECMAScript's `Number::toString` (ryu-js):
//! any double, from the first eight bytes, and any number the input
//! spells as JSON text; each printed form reads back as the same double.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wirehook::providers::jsjson::{self, JsValue};

fuzz_target!(|data: &[u8]| {
    let mut bits = [0u8; 8];
    let n = data.len().min(8);
    bits[..n].copy_from_slice(&data[..n]);
    check(f64::from_le_bytes(bits));
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(JsValue::Number(x)) = jsjson::parse(text)
    {
        check(x);
    }
});

fn check(x: f64) {
    let mut ours = String::new();
    jsjson::write_number(&mut ours, x);
    if !x.is_finite() {
        assert_eq!(ours, "null");
        return;
    }
    let theirs = ryu_js::Buffer::new().format_finite(x).to_owned();
    assert_eq!(ours, theirs, "{x:e} ({:#018x})", x.to_bits());
    let back: f64 = ours.parse().expect("a number Rust reads");
    assert!(back == x, "{ours} reads back as {back:e}, not {x:e}");
}
