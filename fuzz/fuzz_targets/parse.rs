#![no_main]
use warden_wire::{parse_text, Frame, Message, Parse};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = warden_wire_fuzz::round_trip::<Parse>(data, true);
    // The borrowing fast path must agree with the full parse.
    let full = Parse::from_frame(&Frame::new(b'P', data)).ok();
    assert_eq!(
        parse_text(data).ok(),
        full.as_ref().map(|p| (p.name(), p.sql()))
    );
});
