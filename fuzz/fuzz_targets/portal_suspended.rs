#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = warden_wire_fuzz::round_trip::<warden_wire::PortalSuspended>(data, true);
});
