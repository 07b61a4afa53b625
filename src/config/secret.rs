//! Shared secrets: where they come from, and a type that never prints them.
//!
//! A [`Secret`] holds key bytes for HMAC; its `Debug` and `Display` print a mask, so a
//! secret cannot leak through a log line, an error message or a panic.

use std::fmt;
use std::path::PathBuf;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::Deserialize;
use thiserror::Error;

/// The shortest secret we accept, in bytes (the AJ scheme's minimum).
pub const MIN_SECRET_BYTES: usize = 32;

/// The shortest key a `whsec_` secret may decode to, in bytes (the Standard Webhooks
/// minimum: their secrets are 24 to 64 random bytes).
pub const MIN_WHSEC_KEY_BYTES: usize = 24;

/// The prefix of Standard Webhooks secrets, whose rest is the base64 of the key.
pub const WHSEC_PREFIX: &str = "whsec_";

/// How a secret's text becomes HMAC key bytes; set by the route's scheme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyForm {
    /// The bytes as given, at least [`MIN_SECRET_BYTES`] (Stripe, for one, uses its
    /// `whsec_` string itself as the key).
    #[default]
    Raw,
    /// `whsec_<base64>` is decoded to at least [`MIN_WHSEC_KEY_BYTES`]; any other text is
    /// taken as raw bytes, with the raw minimum.
    Whsec,
}

/// Where a route's secret is read from, as written in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, untagged)]
pub enum SecretSource {
    /// An environment variable holding the secret.
    Env {
        /// The variable's name.
        env: String,
        /// The key's name in headers and metrics. Default: its position in the list.
        id: Option<String>,
    },
    /// A file holding the secret; one trailing newline (`\n` or `\r\n`) is trimmed.
    File {
        /// The file's path.
        file: PathBuf,
        /// The key's name in headers and metrics. Default: its position in the list.
        id: Option<String>,
    },
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env { env, .. } => write!(f, "environment variable {env}"),
            SecretSource::File { file, .. } => write!(f, "file {}", file.display()),
        }
    }
}

/// Why a secret could not be loaded. Never carries the secret's bytes.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SecretError {
    /// The environment variable is not set (or not valid UTF-8).
    #[error("{0} is not set")]
    MissingEnv(String),
    /// The file could not be read.
    #[error("cannot read secret file {path}: {reason}")]
    Unreadable {
        /// The file's path.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The secret is empty.
    #[error("the secret from {0} is empty")]
    Empty(String),
    /// The secret is shorter than [`MIN_SECRET_BYTES`].
    #[error("the secret from {origin} is {len} bytes; at least {min} are required")]
    TooShort {
        /// Where it came from.
        origin: String,
        /// Its length in bytes.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// A `whsec_` secret whose rest is not base64.
    #[error("the secret from {0} starts with whsec_ but the rest is not base64")]
    NotBase64(String),
    /// A `whsec_` secret that decodes to fewer than [`MIN_WHSEC_KEY_BYTES`].
    #[error("the whsec_ secret from {origin} decodes to {len} bytes; at least {min} are required")]
    DecodedTooShort {
        /// Where it came from.
        origin: String,
        /// The decoded key's length in bytes.
        len: usize,
        /// The minimum.
        min: usize,
    },
}

/// Key bytes for HMAC, masked in every printed form.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps key bytes, refusing empty or short ones. `source` names where they came from,
    /// for the error message.
    pub fn new(bytes: Vec<u8>, source: &str) -> Result<Self, SecretError> {
        if bytes.is_empty() {
            return Err(SecretError::Empty(source.to_string()));
        }
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort {
                origin: source.to_string(),
                len: bytes.len(),
                min: MIN_SECRET_BYTES,
            });
        }
        Ok(Secret(bytes))
    }

    /// Turns a secret's text into key bytes as `form` says. `source` names where it came
    /// from, for the error message.
    pub fn from_text(bytes: Vec<u8>, source: &str, form: KeyForm) -> Result<Self, SecretError> {
        let encoded = match form {
            KeyForm::Whsec => bytes.strip_prefix(WHSEC_PREFIX.as_bytes()),
            KeyForm::Raw => None,
        };
        let Some(encoded) = encoded else {
            return Secret::new(bytes, source);
        };
        let key = WHSEC_BASE64
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64(source.to_string()))?;
        if key.len() < MIN_WHSEC_KEY_BYTES {
            return Err(SecretError::DecodedTooShort {
                origin: source.to_string(),
                len: key.len(),
                min: MIN_WHSEC_KEY_BYTES,
            });
        }
        Ok(Secret(key))
    }

    /// The key bytes, for computing a digest.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

/// Standard base64; padding is optional, since senders' consoles show secrets both ways.
const WHSEC_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl SecretSource {
    /// The key's configured id, if any.
    pub fn id(&self) -> Option<&str> {
        match self {
            SecretSource::Env { id, .. } | SecretSource::File { id, .. } => id.as_deref(),
        }
    }

    /// Reads the secret from its source, as raw key bytes.
    pub fn load(&self) -> Result<Secret, SecretError> {
        self.load_as(KeyForm::Raw)
    }

    /// Reads the secret from its source and turns it into key bytes as `form` says.
    pub fn load_as(&self, form: KeyForm) -> Result<Secret, SecretError> {
        let bytes = self.read()?;
        Secret::from_text(bytes, &self.to_string(), form)
    }

    /// Reads a secret text with no length rule (a URL holding a password, say).
    pub fn load_text(&self) -> Result<String, SecretError> {
        let bytes = self.read()?;
        let text = String::from_utf8(bytes).map_err(|_| SecretError::Unreadable {
            path: self.to_string(),
            reason: "not UTF-8".into(),
        })?;
        if text.trim().is_empty() {
            return Err(SecretError::Empty(self.to_string()));
        }
        Ok(text.trim().to_string())
    }

    fn read(&self) -> Result<Vec<u8>, SecretError> {
        let bytes = match self {
            SecretSource::Env { env, .. } => std::env::var(env)
                .map_err(|_| SecretError::MissingEnv(format!("environment variable {env}")))?
                .into_bytes(),
            SecretSource::File { file, .. } => {
                let mut bytes = std::fs::read(file).map_err(|e| SecretError::Unreadable {
                    path: file.display().to_string(),
                    reason: e.kind().to_string(),
                })?;
                trim_trailing_newline(&mut bytes);
                bytes
            }
        };
        Ok(bytes)
    }
}

/// A text that may hold a credential (a URL with a password): printed masked.
#[derive(Clone, PartialEq, Eq)]
pub struct Masked(String);

impl Masked {
    /// Wraps the text.
    pub fn new(text: String) -> Self {
        Masked(text)
    }

    /// The text, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Masked(***)")
    }
}

/// Kubernetes secret files and `echo > file` often end in one newline that is not part of
/// the secret.
fn trim_trailing_newline(bytes: &mut Vec<u8>) {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "0123456789abcdef0123456789abcdef-extra";

    #[test]
    fn debug_and_display_are_masked() {
        let secret = Secret::new(LONG.as_bytes().to_vec(), "test").unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{secret}"), "***");
        assert!(!format!("{secret:?} {secret}").contains("0123"));
    }

    #[test]
    fn short_and_empty_secrets_are_refused_without_echoing_them() {
        let err = Secret::new(b"short-secret".to_vec(), "file x").unwrap_err();
        assert_eq!(
            err,
            SecretError::TooShort {
                origin: "file x".into(),
                len: 12,
                min: 32
            }
        );
        assert!(!err.to_string().contains("short-secret"));
        assert_eq!(
            Secret::new(Vec::new(), "env A").unwrap_err(),
            SecretError::Empty("env A".into())
        );
    }

    #[test]
    fn file_secret_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, format!("{LONG}\r\n")).unwrap();
        let secret = SecretSource::File {
            file: path.clone(),
            id: None,
        }
        .load()
        .unwrap();
        assert_eq!(secret.expose(), LONG.as_bytes());

        std::fs::write(&path, format!("{LONG}\n\n")).unwrap();
        let secret = SecretSource::File {
            file: path,
            id: None,
        }
        .load()
        .unwrap();
        assert_eq!(secret.expose(), format!("{LONG}\n").as_bytes());
    }

    #[test]
    fn whsec_secrets_are_decoded_only_where_the_scheme_says() {
        // The Standard Webhooks reference secret: 32 base64 characters, 24 key bytes.
        let text = b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_vec();
        let key = Secret::from_text(text.clone(), "t", KeyForm::Whsec).unwrap();
        assert_eq!(key.expose().len(), 24);
        assert_eq!(&key.expose()[..3], &[0x31, 0xf2, 0x90]);
        // Raw form (Stripe): 38 bytes of text, used as is.
        let raw = Secret::from_text(text, "t", KeyForm::Raw).unwrap();
        assert_eq!(raw.expose(), b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        // Without the prefix, a whsec route takes the text as raw bytes.
        let plain = Secret::from_text(LONG.as_bytes().to_vec(), "t", KeyForm::Whsec).unwrap();
        assert_eq!(plain.expose(), LONG.as_bytes());
        // Padded and unpadded base64 both decode (25 key bytes).
        for text in [
            "whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ubw==",
            "whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ubw",
        ] {
            let key = Secret::from_text(text.as_bytes().to_vec(), "t", KeyForm::Whsec).unwrap();
            assert_eq!(key.expose(), b"0123456789abcdefghijklmno");
        }
    }

    #[test]
    fn bad_whsec_secrets_say_why_without_echoing() {
        let err = Secret::from_text(b"whsec_not*base64!".to_vec(), "file s", KeyForm::Whsec);
        assert_eq!(err.unwrap_err(), SecretError::NotBase64("file s".into()));
        let short = b"whsec_MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=".to_vec();
        let err = Secret::from_text(short, "file s", KeyForm::Whsec).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the whsec_ secret from file s decodes to 20 bytes; at least 24 are required"
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = SecretSource::File {
            file: "/nonexistent/hw-secret".into(),
            id: None,
        }
        .load()
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/hw-secret"), "{err}");
    }
}
