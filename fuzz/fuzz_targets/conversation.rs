#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| leadflow_fuzz::conversation(data));
