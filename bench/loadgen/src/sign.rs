//! AJ deliveries: bodies with a unique top-level "id" at their end, signed with
//! `HMAC-SHA256(secret, timestamp + "." + body)`.
//!
//! The id sits last in the body so that the MAC state over `timestamp "." body-prefix` is
//! computed once per second and cloned per request: signing a 256 KiB delivery then costs
//! the generator a few dozen bytes of hashing, not the whole body.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The event type every delivery carries.
pub const EVENT: &str = "status_change";

/// The fixed front of every body, up to the opening quote of the id.
pub fn body_prefix(body_bytes: usize) -> Arc<Vec<u8>> {
    let head = format!("{{\"event\":\"{EVENT}\",\"reason\":\"");
    let tail = "\",\"id\":\"";
    // The suffix (id, quote, brace) adds about 30 bytes.
    let pad = body_bytes.saturating_sub(head.len() + tail.len() + 30);
    let mut prefix = Vec::with_capacity(head.len() + pad + tail.len());
    prefix.extend_from_slice(head.as_bytes());
    prefix.extend((0..pad).map(|i| b'a' + (i % 26) as u8));
    prefix.extend_from_slice(tail.as_bytes());
    Arc::new(prefix)
}

/// Signs deliveries that share one body prefix, for one connection.
pub struct Signer {
    key: Vec<u8>,
    prefix: Arc<Vec<u8>>,
    second: u64,
    timestamp: String,
    mac: HmacSha256,
}

impl Signer {
    /// A signer with `secret` over bodies starting with `prefix`.
    pub fn new(secret: &[u8], prefix: Arc<Vec<u8>>) -> Signer {
        let mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        Signer {
            key: secret.to_vec(),
            prefix,
            second: u64::MAX,
            timestamp: String::new(),
            mac,
        }
    }

    /// The shared body front.
    pub fn prefix(&self) -> &Arc<Vec<u8>> {
        &self.prefix
    }

    /// Signs `prefix + suffix` with the current time; returns (timestamp, hex digest).
    pub fn sign(&mut self, suffix: &[u8]) -> (&str, String) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if now != self.second {
            self.second = now;
            self.timestamp = rfc3339(now);
            let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length");
            mac.update(self.timestamp.as_bytes());
            mac.update(b".");
            mac.update(&self.prefix);
            self.mac = mac;
        }
        let mut mac = self.mac.clone();
        mac.update(suffix);
        let digest = hex::encode(mac.finalize().into_bytes());
        (&self.timestamp, digest)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days to civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_705_314_600), "2024-01-15T10:30:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn matches_a_whole_body_signature() {
        let secret = b"test-secret-0123456789abcdef0123456789";
        let mut signer = Signer::new(secret, body_prefix(1024));
        let suffix = b"evt-1\"}";
        let (ts, digest) = signer.sign(suffix);
        let ts = ts.to_string();
        let mut whole = HmacSha256::new_from_slice(secret).unwrap();
        whole.update(ts.as_bytes());
        whole.update(b".");
        whole.update(&body_prefix(1024));
        whole.update(suffix);
        assert_eq!(digest, hex::encode(whole.finalize().into_bytes()));
    }

    #[test]
    fn doc_test_vector() {
        let secret = b"test-secret-0123456789abcdef0123456789";
        let body = br#"{"event":"status_change","from":"operational","to":"degraded","changed_at":"2024-01-15T10:30:00Z","reason":"High latency detected"}"#;
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(b"2024-01-15T10:30:00Z.");
        mac.update(body);
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "4b8875aa30d2578476badcb05290f0148a0cf8d8bd2b52fc3cede8eabd8f77e1"
        );
    }
}
