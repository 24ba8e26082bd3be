#![no_main]
use warden_wire::{query_text, Frame, Message, Query};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = warden_wire_fuzz::round_trip::<Query>(data, true);
    // The borrowing fast path must agree with the full parse.
    let full = Query::from_frame(&Frame::new(b'Q', data)).ok();
    assert_eq!(query_text(data).ok(), full.as_ref().map(Query::sql));
});
