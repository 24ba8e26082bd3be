#![no_main]
use warden_wire::CancelRequest;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(c) = CancelRequest::parse(data) {
        assert_eq!(&c.encode()[8..], data);
    }
});
