//! Every built-in scheme on arbitrary headers and bodies. The first input byte chooses,
//! per scheme, whether a correct signature for the fuzzed timestamp, id and body is
//! added, so that what comes after the digest check (ids, event types) is fuzzed too.

#![no_main]

#[path = "common.rs"]
mod common;

use std::time::Duration;

use hookwarden::scheme::{aj, github, shopify, slack, standard_webhooks, stripe, Window};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let flags = data[0];
    let offset = i16::from_le_bytes([data[1], data[2]]);
    let (mut headers, body) = common::request(&data[3..]);
    let now = common::now(offset);
    let key = common::KEY;

    if flags & 1 != 0 {
        if let Some(ts) = common::text(&headers, aj::TIMESTAMP).map(str::to_owned) {
            let ts = ts.trim_matches([' ', '\t']);
            let value = format!("sha256={}", hex::encode(aj::sign(key, ts, body)));
            common::add(&mut headers, aj::SIGNATURE, &value);
        }
    }
    if flags & 2 != 0 {
        let ts = now.unix_timestamp().to_string();
        common::add(
            &mut headers,
            stripe::SIGNATURE,
            &stripe::sign(key, &ts, body),
        );
    }
    if flags & 4 != 0 {
        common::add(&mut headers, github::SIGNATURE, &github::sign(key, body));
    }
    if flags & 8 != 0 {
        if let Some(ts) = common::text(&headers, slack::TIMESTAMP).map(str::to_owned) {
            let value = slack::sign(key, ts.trim_matches([' ', '\t']), body);
            common::add(&mut headers, slack::SIGNATURE, &value);
        }
    }
    if flags & 16 != 0 {
        common::add(&mut headers, shopify::SIGNATURE, &shopify::sign(key, body));
    }
    if flags & 32 != 0 {
        let id = common::text(&headers, standard_webhooks::ID).map(str::to_owned);
        let ts = common::text(&headers, standard_webhooks::TIMESTAMP).map(str::to_owned);
        if let (Some(id), Some(ts)) = (id, ts) {
            let (id, ts) = (id.trim_matches([' ', '\t']), ts.trim_matches([' ', '\t']));
            let value = standard_webhooks::sign(key, id, ts, body);
            common::add(&mut headers, standard_webhooks::SIGNATURE, &value);
        }
    }

    let secrets = common::secrets();
    let window = Window::symmetric(Duration::from_secs(300));
    let verdicts = [
        aj::verify(&headers, body, &secrets, window, now),
        stripe::verify(&headers, body, &secrets, window, now),
        github::verify(&headers, body, &secrets, window, now),
        slack::verify(&headers, body, &secrets, window, now),
        shopify::verify(&headers, body, &secrets, window, now),
        standard_webhooks::verify(&headers, body, &secrets, window, now),
    ];
    for claims in verdicts.iter().flatten() {
        common::check_claims(claims);
    }

    // The same request again must get the same verdicts: nothing depends on state.
    let again = aj::verify(&headers, body, &secrets, window, now);
    assert_eq!(again, verdicts[0]);
});
