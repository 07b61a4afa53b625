//! Shared secrets: where they come from, and a type that never prints them.
//!
//! A [`Secret`] holds key bytes for HMAC; its `Debug` and `Display` print a mask, so a
//! secret cannot leak through a log line, an error message or a panic.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use thiserror::Error;

/// The shortest secret we accept, in bytes (the AJ scheme's minimum).
pub const MIN_SECRET_BYTES: usize = 32;

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

    /// The key bytes, for computing a digest.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

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

    /// Reads the secret from its source.
    pub fn load(&self) -> Result<Secret, SecretError> {
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
        Secret::new(bytes, &self.to_string())
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
