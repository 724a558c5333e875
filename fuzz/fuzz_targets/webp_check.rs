#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fourk_fuzz::webp_check(data));
