#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = warden_wire_fuzz::startup_codec(data);
});
