//! Config text of any shape: it loads, or it is a list of problems; never a panic.

#![no_main]

use hookwarden::config::{Config, ConfigError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text, "fuzz.toml") {
        Ok(config) => assert!(!config.routes.is_empty()),
        Err(ConfigError::Parse { line, .. }) => assert!(line <= text.lines().count() + 1),
        Err(_) => {}
    }
});
