//! Runs the real `hookwarden` binary as a child process, the way an operator would.
//!
//! A [`ProxyConfig`] renders the TOML file (secrets go into files in the same temp folder,
//! or into the child's environment), and [`Proxy`] starts `hookwarden run` on a free port,
//! waits until the port accepts TCP, and kills the process when dropped. It can stop the
//! proxy gently (SIGTERM) or hard (SIGKILL) and start it again on the same store, which is
//! what the persistence tests need. Output of the binary goes to a log file whose tail is
//! shown whenever the proxy fails to start.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::aj::SECRET;
use super::raw::{RawConn, Step};

/// The binary under test, built by Cargo for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_hookwarden");

/// How long the proxy may take to listen, or to exit after SIGTERM.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Where a route's secret comes from.
#[derive(Clone, Debug)]
pub enum Secret {
    /// A file (written by the harness, with a trailing newline) holding this value.
    File(String),
    /// An environment variable of the child process, set to `value`.
    Env {
        /// The variable's name.
        var: String,
        /// Its value.
        value: String,
    },
}

/// One `[[routes]]` entry with the `aj` scheme.
#[derive(Clone, Debug)]
pub struct Route {
    /// The route's name.
    pub name: String,
    /// The path it serves.
    pub path: String,
    /// `tolerance_seconds`; 300 unless changed.
    pub tolerance_seconds: u64,
    /// `max_body_bytes`; 1 MiB unless changed.
    pub max_body_bytes: u64,
    /// Secrets, tried in order.
    pub secrets: Vec<Secret>,
}

impl Route {
    /// A route with no secret yet.
    pub fn new(name: &str, path: &str) -> Self {
        Self {
            name: name.to_owned(),
            path: path.to_owned(),
            tolerance_seconds: 300,
            max_body_bytes: 1_048_576,
            secrets: Vec::new(),
        }
    }

    /// The standard route: `aj` on `/webhooks/aj`, [`SECRET`] in a file.
    pub fn aj() -> Self {
        Self::new("aj", "/webhooks/aj").secret_file(SECRET)
    }

    /// Adds a secret kept in a file.
    pub fn secret_file(mut self, value: &str) -> Self {
        self.secrets.push(Secret::File(value.to_owned()));
        self
    }

    /// Adds a secret read from environment variable `var`, which the child gets.
    pub fn secret_env(mut self, var: &str, value: &str) -> Self {
        self.secrets.push(Secret::Env {
            var: var.to_owned(),
            value: value.to_owned(),
        });
        self
    }

    /// Sets `max_body_bytes`.
    pub fn max_body_bytes(mut self, bytes: u64) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets `tolerance_seconds`.
    pub fn tolerance_seconds(mut self, seconds: u64) -> Self {
        self.tolerance_seconds = seconds;
        self
    }
}

/// A whole configuration file.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// `[upstream] url`.
    pub upstream_url: String,
    /// `[upstream] timeout_seconds`; 10 unless changed.
    pub upstream_timeout_seconds: u64,
    /// `[store] retention_seconds`; 7 days unless changed.
    pub retention_seconds: u64,
    /// `[store] sync`; `always` unless changed.
    pub sync: String,
    /// Extra lines for `[server]`, `[upstream]` and `[store]`.
    pub server_lines: Vec<String>,
    /// See `server_lines`.
    pub upstream_lines: Vec<String>,
    /// See `server_lines`.
    pub store_lines: Vec<String>,
    /// The routes, in order.
    pub routes: Vec<Route>,
}

/// A rendered configuration: the file and the environment the child needs.
#[derive(Clone, Debug)]
pub struct WrittenConfig {
    /// The TOML file.
    pub path: PathBuf,
    /// Variables for the secrets kept in the environment.
    pub envs: Vec<(String, String)>,
    /// The admin listener (`/readyz`, `/metrics`).
    pub admin: SocketAddr,
}

impl ProxyConfig {
    /// A configuration for `upstream_url` with no routes yet.
    pub fn new(upstream_url: impl Into<String>) -> Self {
        Self {
            upstream_url: upstream_url.into(),
            upstream_timeout_seconds: 10,
            retention_seconds: 604_800,
            sync: "always".to_owned(),
            server_lines: Vec::new(),
            upstream_lines: Vec::new(),
            store_lines: Vec::new(),
            routes: Vec::new(),
        }
    }

    /// A configuration with the standard [`Route::aj`] route.
    pub fn aj(upstream_url: impl Into<String>) -> Self {
        Self::new(upstream_url).route(Route::aj())
    }

    /// Adds a route.
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// Adds a line to `[server]`, e.g. `body_timeout_seconds = 1`.
    pub fn server_line(mut self, line: &str) -> Self {
        self.server_lines.push(line.to_owned());
        self
    }

    /// Adds a line to `[upstream]`.
    pub fn upstream_line(mut self, line: &str) -> Self {
        self.upstream_lines.push(line.to_owned());
        self
    }

    /// Adds a line to `[store]`.
    pub fn store_line(mut self, line: &str) -> Self {
        self.store_lines.push(line.to_owned());
        self
    }

    /// Sets `[upstream] timeout_seconds`.
    pub fn upstream_timeout_seconds(mut self, seconds: u64) -> Self {
        self.upstream_timeout_seconds = seconds;
        self
    }

    /// Sets `[store] retention_seconds`.
    pub fn retention_seconds(mut self, seconds: u64) -> Self {
        self.retention_seconds = seconds;
        self
    }

    /// Writes `config.toml` and the secret files into `dir`, listening on `listen`.
    pub fn write(&self, dir: &Path, listen: SocketAddr) -> WrittenConfig {
        let mut envs = Vec::new();
        // The admin listener (metrics, probes) defaults to a fixed port, which proxies of
        // tests running side by side would fight over: each gets a free one unless the test
        // chose one itself.
        let chosen: Option<SocketAddr> = self.server_lines.iter().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            if key.trim() != "admin_listen" {
                return None;
            }
            value.trim().trim_matches('"').parse().ok()
        });
        let admin = chosen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], free_port())));
        let mut text = format!(
            "[server]\nlisten = {}\nthreads = 2\n",
            quote(&listen.to_string())
        );
        if chosen.is_none() {
            text.push_str(&format!("admin_listen = {}\n", quote(&admin.to_string())));
        }
        push_lines(&mut text, &self.server_lines);
        text.push_str(&format!(
            "\n[upstream]\nurl = {}\ntimeout_seconds = {}\n",
            quote(&self.upstream_url),
            self.upstream_timeout_seconds
        ));
        push_lines(&mut text, &self.upstream_lines);
        let store = dir.join("store");
        text.push_str(&format!(
            "\n[store]\npath = {}\nretention_seconds = {}\nsync = {}\n",
            quote(&store.to_string_lossy()),
            self.retention_seconds,
            quote(&self.sync)
        ));
        push_lines(&mut text, &self.store_lines);

        for route in &self.routes {
            let mut sources = Vec::new();
            for (index, secret) in route.secrets.iter().enumerate() {
                match secret {
                    Secret::File(value) => {
                        let file = dir.join(format!("secret-{}-{index}", route.name));
                        std::fs::write(&file, format!("{value}\n")).expect("write a secret file");
                        sources.push(format!("{{ file = {} }}", quote(&file.to_string_lossy())));
                    }
                    Secret::Env { var, value } => {
                        envs.push((var.clone(), value.clone()));
                        sources.push(format!("{{ env = {} }}", quote(var)));
                    }
                }
            }
            text.push_str(&format!(
                "\n[[routes]]\nname = {}\npath = {}\nscheme = \"aj\"\ntolerance_seconds = {}\n\
                 max_body_bytes = {}\nsecrets = [{}]\n",
                quote(&route.name),
                quote(&route.path),
                route.tolerance_seconds,
                route.max_body_bytes,
                sources.join(", ")
            ));
        }

        let path = dir.join("config.toml");
        std::fs::write(&path, text).expect("write the config file");
        WrittenConfig { path, envs, admin }
    }
}

fn push_lines(text: &mut String, lines: &[String]) {
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
}

/// A TOML basic string.
pub fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A port that was free a moment ago. Another process could take it before the proxy
/// binds it; on a test machine that is rare enough, and the failure names the port.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A running `hookwarden run` with its own temp folder (config, secrets, store, log).
pub struct Proxy {
    dir: TempDir,
    config: WrittenConfig,
    addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
}

impl Proxy {
    /// Writes `config` into a new temp folder, starts the proxy and waits until it is ready:
    /// its port accepts TCP and its admin `/readyz` answers 200.
    pub async fn start(config: ProxyConfig) -> Self {
        let mut proxy = Self::spawn(config).await;
        proxy.wait_until_ready().await;
        proxy
    }

    /// Like [`start`](Self::start) but returns as soon as the port accepts TCP, which is
    /// when the contract calls the proxy ready.
    pub async fn start_listening(config: ProxyConfig) -> Self {
        Self::spawn(config).await
    }

    async fn spawn(config: ProxyConfig) -> Self {
        assert!(!config.routes.is_empty(), "a proxy config needs a route");
        let dir = tempfile::tempdir().expect("create a temp folder");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let written = config.write(dir.path(), addr);
        let log = dir.path().join("hookwarden.log");
        let mut proxy = Self {
            dir,
            config: written,
            addr,
            child: None,
            log,
        };
        proxy.spawn_child();
        proxy.wait_until_listening().await;
        proxy
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The temp folder holding config, secrets, store and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config.path
    }

    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The admin listener's address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.config.admin
    }

    /// Starts the binary again with the same config and store; waits until it is ready.
    pub async fn start_again(&mut self) {
        self.spawn_child();
        self.wait_until_listening().await;
        self.wait_until_ready().await;
    }

    fn spawn_child(&mut self) {
        assert!(self.child.is_none(), "the proxy is already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the proxy log");
        let child = Command::new(BIN)
            .arg("run")
            .arg("--config")
            .arg(&self.config.path)
            .current_dir(self.dir.path())
            .env_remove("AJ_WEBHOOK_SHARED_SECRET")
            .envs(self.config.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone the log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
        self.child = Some(child);
    }

    /// Polls `/readyz` on the admin port until it answers 200. A proxy whose store did not
    /// open at once still listens (answering 503 while it retries), so tests of anything
    /// else wait for this too; one test holds the proxy to the contract's promise that an
    /// accepting port means ready.
    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let probe = b"GET /readyz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            self.assert_running();
            if let Ok(mut conn) = RawConn::try_connect(self.config.admin).await {
                conn.write_in_background(vec![Step::Write(probe.to_vec())]);
                match conn.read_final(Duration::from_secs(2)).await {
                    Ok((_, answer)) if answer.status == 200 => return,
                    Ok((_, answer)) => last = answer.summary(),
                    Err(e) => last = e.to_string(),
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "hookwarden was not ready within {STARTUP_TIMEOUT:?} (/readyz: {last}); log tail:\n{}",
            self.log_tail(30)
        );
    }

    async fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("try_wait") {
                self.child = None;
                panic!(
                    "hookwarden exited ({status}) before listening on {}; log tail:\n{}",
                    self.addr,
                    self.log_tail(30)
                );
            }
            let connect = tokio::net::TcpStream::connect(self.addr);
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "hookwarden did not listen on {} within {STARTUP_TIMEOUT:?}; log tail:\n{}",
                    self.addr,
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit; panics if it does not in time.
    pub async fn stop(&mut self) {
        let mut child = self.child.take().expect("the proxy is not running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM failed: {status}");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if child.try_wait().expect("try_wait").is_some() {
                return;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "hookwarden did not exit within {STARTUP_TIMEOUT:?} of SIGTERM; log tail:\n{}",
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Kills the process with SIGKILL (no chance to flush or clean up) and reaps it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("the proxy is not running");
        child.kill().expect("SIGKILL the proxy");
        child.wait().expect("reap the proxy");
    }

    /// Panics, with the log, if the process has exited.
    pub fn assert_running(&mut self) {
        let child = self
            .child
            .as_mut()
            .expect("the proxy was stopped by the test");
        if let Some(status) = child.try_wait().expect("try_wait") {
            self.child = None;
            panic!(
                "hookwarden exited ({status}); log tail:\n{}",
                self.log_tail(30)
            );
        }
    }

    /// The last `lines` lines the binary wrote to stdout and stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A failed test shows what the proxy logged; the temp folder is gone afterwards.
        if std::thread::panicking() {
            eprintln!(
                "--- hookwarden log tail ({}):\n{}",
                self.addr,
                self.log_tail(40)
            );
        }
    }
}

/// What a CLI invocation produced.
#[derive(Clone, Debug)]
pub struct CliOutput {
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// Standard output and standard error together, for searching messages.
    pub fn combined(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `hookwarden args...` with `envs` added (and the sender's usual secret variable
/// removed, so the caller's environment cannot leak in); gives up after 30 s.
pub async fn run_cli(args: &[&str], envs: &[(String, String)], dir: &Path) -> CliOutput {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_remove("AJ_WEBHOOK_SHARED_SECRET")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .unwrap_or_else(|_| panic!("hookwarden {args:?} did not finish within 30 s"))
        .unwrap_or_else(|e| panic!("run hookwarden {args:?}: {e}"));
    CliOutput {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
