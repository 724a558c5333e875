#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fourk_fuzz::png_rows(data));
