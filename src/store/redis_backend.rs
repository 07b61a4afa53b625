//! The shared backend: Redis (or Valkey), so that every replica of an app sees the same
//! claims and processed marks.
//!
//! A claim is `SET NX PX lease` on both keys in one script; a commit replaces only our
//! own claim (or a lapsed one) with a processed mark that expires after the retention; a
//! release deletes only our own claim. Expiry is Redis's TTL, so there is nothing to sweep.
//! What Redis keeps across its own restarts and failovers is its persistence and
//! replication settings' business (see the README).

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::{Backend, ClaimKey, StoreError, SweepReport, Verdict};

/// Claims both keys, unless one of them is processed or claimed.
/// Replies `{"ok"}`, `{"dup", event_id}` or `{"busy"}`.
const CLAIM: &str = r#"
for i = 1, 2 do
  local v = redis.call('GET', KEYS[i])
  if v then
    if string.sub(v, 1, 2) == 'P:' then return {'dup', string.sub(v, 3)} end
    return {'busy'}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return {'ok'}
"#;

/// Marks both keys processed, unless another holder's claim is there now.
const COMMIT: &str = r#"
for i = 1, 2 do
  local v = redis.call('GET', KEYS[i])
  if (not v) or v == ARGV[1] or string.sub(v, 1, 2) == 'P:' then
    redis.call('SET', KEYS[i], ARGV[2], 'PX', ARGV[3])
  end
end
return 1
"#;

/// Deletes the keys that still hold our claim.
const RELEASE: &str = r#"
for i = 1, 2 do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 1
"#;

/// The Redis backend.
pub struct RedisBackend {
    connection: ConnectionManager,
    prefix: String,
    retention_ms: u64,
    claim: Script,
    commit: Script,
    release: Script,
}

impl RedisBackend {
    /// Prepares a connection that is made on first use and remade after failures. The URL
    /// may carry a password: it is never logged, and errors do not repeat it.
    pub fn connect(
        url: &str,
        prefix: &str,
        timeout: Duration,
        retention_ms: u64,
    ) -> Result<Self, StoreError> {
        let client =
            redis::Client::open(url).map_err(|e| StoreError::Redis(format!("{:?}", e.kind())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreError::Redis(format!("{:?}", e.kind())))?;
        Ok(RedisBackend {
            connection,
            prefix: prefix.to_string(),
            retention_ms,
            claim: Script::new(CLAIM),
            commit: Script::new(COMMIT),
            release: Script::new(RELEASE),
        })
    }

    fn keys(&self, key: &ClaimKey) -> [String; 2] {
        [
            format!("{}:{}:e:{}", self.prefix, key.route, key.event_id),
            format!(
                "{}:{}:s:{}",
                self.prefix,
                key.route,
                hex::encode(&key.digest)
            ),
        ]
    }
}

fn claim_value(token: u64) -> String {
    format!("C:{token:016x}")
}

fn failed(e: redis::RedisError) -> StoreError {
    // The kind and code only: a message could quote the URL.
    StoreError::Redis(match e.code() {
        Some(code) => format!("{:?} ({code})", e.kind()),
        None => format!("{:?}", e.kind()),
    })
}

#[async_trait]
impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn claim(
        &self,
        key: &ClaimKey,
        token: u64,
        _now_ms: u64,
        lease_ms: u64,
    ) -> Result<Verdict, StoreError> {
        let [event, signature] = self.keys(key);
        let mut connection = self.connection.clone();
        let reply: Vec<String> = self
            .claim
            .key(event)
            .key(signature)
            .arg(claim_value(token))
            .arg(lease_ms.max(1))
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        match reply.as_slice() {
            [ok] if ok == "ok" => Ok(Verdict::Granted),
            [busy] if busy == "busy" => Ok(Verdict::InFlight),
            [dup, id] if dup == "dup" => Ok(Verdict::Duplicate {
                event_id: id.clone(),
            }),
            _ => Err(StoreError::Redis("unexpected claim reply".into())),
        }
    }

    async fn commit(&self, key: &ClaimKey, token: u64, _now_ms: u64) -> Result<(), StoreError> {
        let [event, signature] = self.keys(key);
        let mut connection = self.connection.clone();
        let _: i64 = self
            .commit
            .key(event)
            .key(signature)
            .arg(claim_value(token))
            .arg(format!("P:{}", key.event_id))
            .arg(self.retention_ms.max(1))
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn release(&self, key: &ClaimKey, token: u64) -> Result<(), StoreError> {
        let [event, signature] = self.keys(key);
        let mut connection = self.connection.clone();
        let _: i64 = self
            .release
            .key(event)
            .key(signature)
            .arg(claim_value(token))
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn sweep(&self, _now_ms: u64) -> Result<SweepReport, StoreError> {
        // Keys expire by TTL; a sweep only proves the connection works.
        self.probe().await?;
        Ok(SweepReport::default())
    }

    async fn probe(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn disk_bytes(&self) -> Option<u64> {
        None
    }
}
