//! The configurable `custom` scheme: the input's first line is the `[routes.custom]`
//! table (TOML, `;` standing for a line break), the rest a request as in
//! `verify_headers`. Whatever table parses is run against the request through the
//! route-level entry point the proxy calls; a second run with a correct signature added
//! fuzzes what follows the digest check.

#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use hookwarden::config::Config;
use hookwarden::scheme;
use libfuzzer_sys::fuzz_target;

fn secret_file() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("hookwarden-fuzz-{}", std::process::id()));
        std::fs::write(&path, common::KEY).unwrap();
        path.to_string_lossy().into_owned()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(newline) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let Ok(table) = std::str::from_utf8(&data[..newline]) else {
        return;
    };
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:1\"\nadmin_listen = \"127.0.0.1:2\"\n\
         [upstream]\nurl = \"http://127.0.0.1:3\"\n[store]\npath = \"unused\"\n\
         [[routes]]\nname = \"c\"\npath = \"/c\"\nscheme = \"custom\"\n\
         secrets = [{{ file = {:?} }}]\n[routes.custom]\n{}\n",
        secret_file(),
        table.replace(';', "\n")
    );
    let Ok(config) = Config::parse(&text, "fuzz.toml") else {
        return;
    };
    let route = &config.routes[0];
    let spec = route.custom.as_ref().expect("a custom route has its table");
    let (mut headers, body) = common::request(&data[newline + 1..]);
    let now = common::now(0);

    if let Ok(claims) = scheme::verify(route, &headers, body, now) {
        common::check_claims(&claims);
    }

    // Sign what the request carries, as a genuine sender of this scheme would.
    let ts = spec
        .timestamp
        .as_ref()
        .and_then(|t| headers.get(&t.header))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_matches([' ', '\t']).to_owned())
        .unwrap_or_default();
    let id = scheme::custom::find_id(&spec.id_sources, &headers, body)
        .map(|(id, _)| id)
        .unwrap_or_default();
    let value = scheme::custom::sign(spec, common::KEY, &ts, &id, body);
    if let Ok(value) = http::HeaderValue::from_str(&value) {
        headers.append(spec.signature_header.clone(), value);
        if let Ok(claims) = scheme::verify(route, &headers, body, now) {
            common::check_claims(&claims);
        }
    }
});
