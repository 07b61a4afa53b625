//! Helpers shared by the schemes' unit tests: header maps, keys and windows.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{Claims, VerifyError, Window};
use crate::config::{KeyForm, Secret};

/// Five minutes each way, the default tolerance.
pub const WINDOW: Window = Window {
    past: Duration::from_secs(300),
    future: Duration::from_secs(300),
};

/// A header map with `pairs` appended in order (repeats kept).
pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// Raw key bytes from text (at least 32 bytes).
pub fn key(text: &str) -> Secret {
    Secret::new(text.as_bytes().to_vec(), "test").unwrap()
}

/// A key read as a Standard Webhooks route reads it (`whsec_` decoded).
pub fn whsec_key(text: &str) -> Secret {
    Secret::from_text(text.as_bytes().to_vec(), "test", KeyForm::Whsec).unwrap()
}

/// A key a route rotates away from.
pub const OLD: &str = "old-secret-0123456789abcdef0123456789";
/// The key a route rotates to.
pub const NEW: &str = "new-secret-0123456789abcdef0123456789";
/// A key the route does not have.
pub const OTHER: &str = "not-a-route-secret-0123456789abcdef01";

/// Rotation, the same for every scheme. `run(configured, signers)` sends one request
/// signed by each of `signers` (several signatures at once where the scheme carries
/// them, else repeated header lines) to a route holding `configured`.
pub fn assert_rotation(
    old: &Secret,
    new: &Secret,
    other: &Secret,
    run: impl Fn(&[Secret], &[&Secret]) -> Result<Claims, VerifyError>,
) {
    let both = [old.clone(), new.clone()];
    let index = |r: Result<Claims, VerifyError>| r.map(|c| c.key_index);
    assert_eq!(index(run(&both, &[old])), Ok(0), "signed with the old key");
    assert_eq!(index(run(&both, &[new])), Ok(1), "signed with the new key");
    assert_eq!(index(run(&both, &[new, old])), Ok(0), "signed with both");
    assert_eq!(
        index(run(&both, &[other])),
        Err(VerifyError::InvalidSignature),
        "signed with neither"
    );
    assert_eq!(
        index(run(std::slice::from_ref(old), &[new])),
        Err(VerifyError::InvalidSignature),
        "the new key before the route has it"
    );
    assert_eq!(
        index(run(std::slice::from_ref(new), &[old])),
        Err(VerifyError::InvalidSignature),
        "the old key after the route dropped it"
    );
}
