#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = warden_wire_fuzz::frame_codec(data);
});
