//! Any text frame: `parse` answers a request or a refusal, never panics, and a refusal always maps to an error
//! frame the client can read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_core::frames::parse;

fuzz_target!(|data: &[u8]| {
    // API Gateway hands text frames to the functions as UTF-8; binary frames arrive base64-encoded (also UTF-8).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(request) => {
            let _ = (request.frame.action(), request.frame.kind());
        }
        Err(refusal) => {
            let frame = refusal.into_reply().to_json();
            let v: serde_json::Value = serde_json::from_str(&frame).expect("an error frame is JSON");
            assert_eq!(v["type"], "error");
        }
    }
});
