//! Every provider signs a fuzzed payload with its own `sign`; the request
//! must then verify, and what it proves decodes with each event reading
//! back from its raw JSON. The first byte picks the provider.

#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use wirehook_fuzz::{Fuzzed, Req};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let fuzzed = Fuzzed::from_selector(selector);
    let Ok(signed) = fuzzed.provider.sign(payload, SystemTime::now()) else {
        return;
    };
    let req = Req::post(&signed);
    match fuzzed.provider.verify(&req.request()) {
        Ok(verified) => fuzzed.check_decode(&verified.document),
        Err(rejection) => assert!(
            has_time_claims(fuzzed.id, payload),
            "{}: its own signed request is refused: {rejection:?}",
            fuzzed.id
        ),
    }
});

/// A Truora payload's `exp` and `nbf` are honoured as given: one already
/// expired, not yet valid, or not a time is rightly refused.
fn has_time_claims(id: &str, payload: &[u8]) -> bool {
    id == "truora"
        && serde_json::from_slice::<serde_json::Value>(payload)
            .is_ok_and(|claims| claims.get("exp").is_some() || claims.get("nbf").is_some())
}
