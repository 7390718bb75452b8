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
        Err(rejection) => panic!(
            "{}: its own signed request is refused: {rejection:?}",
            fuzzed.id
        ),
    }
});
