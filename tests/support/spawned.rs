//! A proxy started from hand-written config text (several schemes, two proxies on one
//! store, chosen log levels), for the tests the config builder does not cover.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hookwarden");

/// A proxy started from hand-written config text, with its own log file.
pub struct Spawned {
    child: Child,
    log: PathBuf,
}

impl Spawned {
    pub fn start(dir: &Path, name: &str, config: &str, envs: &[(&str, &str)]) -> Spawned {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .args(["run", "--config", path.to_str().unwrap()])
            .envs(envs.iter().copied())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start hookwarden");
        Spawned { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills it with SIGKILL: no chance to flush or release anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
    }

    /// Waits for the exit and returns its code and how long it took.
    pub fn wait_exit(&mut self, limit: Duration) -> (Option<i32>, Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "hookwarden did not exit within {limit:?}; log:\n{}",
            self.log()
        );
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One GET on the admin port: status and body.
pub async fn admin_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    let answer = super::exchange(addr, request.as_bytes()).await;
    (answer.status, answer.text())
}

/// Polls `path` on the admin port until it answers `status`; returns the body.
pub async fn wait_for_status(
    admin: SocketAddr,
    path: &str,
    status: u16,
    limit: Duration,
) -> String {
    let started = Instant::now();
    let mut last = (0, String::new());
    while started.elapsed() < limit {
        if tokio::net::TcpStream::connect(admin).await.is_ok() {
            last = admin_get(admin, path).await;
            if last.0 == status {
                return last.1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never answered {status} within {limit:?}; last: {last:?}");
}
