//! A real `redis-server` on a free loopback port, started and stopped by a test.
//!
//! CI installs Debian's `redis-server`; `HOOKWARDEN_REDIS_SERVER` may name another
//! binary. Each test gets its own server, with persistence off, so tests can stop and
//! restart it without touching each other.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::proxy::free_port;

/// A running (or stopped) Redis server on a fixed loopback port.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it accepts connections.
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Starts it again on the same port (empty: persistence is off).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "redis is already running");
        let binary =
            std::env::var("HOOKWARDEN_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let port = self.port.to_string();
        let child = Command::new(&binary)
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary} ({e}); install Debian's redis-server (.ci/run does)")
            });
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it (SIGKILL) and waits until the port is closed.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("redis is not running");
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
