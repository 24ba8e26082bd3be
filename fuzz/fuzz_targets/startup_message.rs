#![no_main]
use warden_wire::{StartupMessage, PROTOCOL_3_0};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = StartupMessage::parse(PROTOCOL_3_0, data) {
        assert!(m.validate().is_ok());
        assert_eq!(&m.encode()[8..], data);
    }
});
