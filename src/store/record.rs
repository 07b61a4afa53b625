//! The store's on-disk records: keys for events and signatures, and their values.
//!
//! A key is a kind byte, the route name, a zero byte, then the event id or the digest.
//! A value is a state byte, a time in Unix milliseconds (a claim's lease end, or when
//! the event was processed), a claim token, and for signatures the event id they
//! belong to.

use thiserror::Error;

const EVENT: u8 = b'e';
const SIGNATURE: u8 = b's';
const CLAIMED: u8 = b'C';
const PROCESSED: u8 = b'P';
const HEADER_BYTES: usize = 1 + 8 + 8;

/// A record's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// With the app right now, until `lease_until_ms`, held by `token`.
    Claimed {
        /// When the claim lapses if its holder never commits or releases.
        lease_until_ms: u64,
        /// Identifies the holder.
        token: u64,
    },
    /// The app accepted it at `at_ms`.
    Processed {
        /// When.
        at_ms: u64,
    },
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Claimed or processed.
    pub state: State,
    /// The event id (kept in signature records, to answer exact replays).
    pub event_id: String,
}

/// A value that does not decode: the store is damaged or was written by something else.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("a store record is damaged ({0} bytes)")]
pub struct Damaged(pub usize);

/// The key of an event id on a route.
pub fn event_key(route: &str, event_id: &str) -> Vec<u8> {
    key(EVENT, route, event_id.as_bytes())
}

/// The key of a signature digest on a route.
pub fn signature_key(route: &str, digest: &[u8]) -> Vec<u8> {
    key(SIGNATURE, route, digest)
}

fn key(kind: u8, route: &str, tail: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + route.len() + tail.len());
    key.push(kind);
    key.extend_from_slice(route.as_bytes());
    key.push(0);
    key.extend_from_slice(tail);
    key
}

impl Record {
    /// Encodes the record.
    pub fn encode(&self) -> Vec<u8> {
        let (state, time, token) = match self.state {
            State::Claimed {
                lease_until_ms,
                token,
            } => (CLAIMED, lease_until_ms, token),
            State::Processed { at_ms } => (PROCESSED, at_ms, 0),
        };
        let mut value = Vec::with_capacity(HEADER_BYTES + self.event_id.len());
        value.push(state);
        value.extend_from_slice(&time.to_be_bytes());
        value.extend_from_slice(&token.to_be_bytes());
        value.extend_from_slice(self.event_id.as_bytes());
        value
    }

    /// Decodes a stored value.
    pub fn decode(value: &[u8]) -> Result<Record, Damaged> {
        let damaged = || Damaged(value.len());
        if value.len() < HEADER_BYTES {
            return Err(damaged());
        }
        let time = u64::from_be_bytes(value[1..9].try_into().map_err(|_| damaged())?);
        let token = u64::from_be_bytes(value[9..17].try_into().map_err(|_| damaged())?);
        let state = match value[0] {
            CLAIMED => State::Claimed {
                lease_until_ms: time,
                token,
            },
            PROCESSED => State::Processed { at_ms: time },
            _ => return Err(damaged()),
        };
        let event_id = String::from_utf8(value[HEADER_BYTES..].to_vec()).map_err(|_| damaged())?;
        Ok(Record { state, event_id })
    }

    /// Whether a sweep at `now_ms` may delete this record.
    pub fn expired(&self, now_ms: u64, retention_ms: u64) -> bool {
        match self.state {
            State::Claimed { lease_until_ms, .. } => lease_until_ms <= now_ms,
            State::Processed { at_ms } => at_ms.saturating_add(retention_ms) <= now_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        for state in [
            State::Claimed {
                lease_until_ms: 17,
                token: u64::MAX,
            },
            State::Processed {
                at_ms: 1_700_000_000_000,
            },
        ] {
            let record = Record {
                state,
                event_id: "inc_1 ü".into(),
            };
            assert_eq!(Record::decode(&record.encode()), Ok(record));
        }
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        assert_eq!(Record::decode(b"P123"), Err(Damaged(4)));
        let mut bad = Record {
            state: State::Processed { at_ms: 1 },
            event_id: String::new(),
        }
        .encode();
        bad[0] = b'X';
        assert!(Record::decode(&bad).is_err());
    }

    #[test]
    fn keys_separate_routes_and_kinds() {
        assert_ne!(event_key("a", "1"), signature_key("a", b"1"));
        assert_eq!(event_key("aj", "x"), b"eaj\0x".to_vec());
    }

    #[test]
    fn expiry_follows_lease_and_retention() {
        let claim = Record {
            state: State::Claimed {
                lease_until_ms: 10,
                token: 1,
            },
            event_id: String::new(),
        };
        assert!(!claim.expired(9, 0));
        assert!(claim.expired(10, 0));
        let done = Record {
            state: State::Processed { at_ms: 10 },
            event_id: String::new(),
        };
        assert!(!done.expired(109, 100));
        assert!(done.expired(110, 100));
    }
}
