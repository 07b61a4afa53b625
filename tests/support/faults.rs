//! Faults on demand for the attack and failure tests: an app that misbehaves as scripted
//! ([`FaultyApp`]), a small tmpfs whose disk can be filled or made read-only ([`Tmpfs`]),
//! and a higher open-file limit for tests that hold hundreds of connections.
//!
//! The app speaks just enough HTTP/1.1 to read what the proxy forwards (a head and a body
//! framed by Content-Length, which is all the proxy ever sends) and to answer badly on
//! purpose: a status, silence, or a connection closed part-way through its answer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the app treats one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers this status with a small JSON body.
    Answer(u16),
    /// Reads the request and never answers (until the app is stopped).
    Hang,
    /// Reads the request and closes the connection without a byte of answer.
    CloseBeforeAnswer,
    /// Sends half a status line, then closes.
    CloseMidHead,
    /// Sends a complete `200` head promising 100 body bytes, 6 of them, then closes.
    CloseMidBody,
}

/// One request as the app read it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `X-Hookwarden-Event-Id`, if present.
    pub event_id: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    /// When the whole request had arrived.
    pub at: Instant,
}

struct AppShared {
    queue: Mutex<VecDeque<Behaviour>>,
    default: Mutex<Behaviour>,
    seen: Mutex<Vec<Seen>>,
    stopping: watch::Sender<bool>,
}

/// A scripted, misbehaving app on 127.0.0.1. It closes every connection after one
/// exchange, so each forward is on a fresh connection and a fault is never mistaken for
/// a stale pooled one.
pub struct FaultyApp {
    addr: SocketAddr,
    shared: Arc<AppShared>,
    task: Option<JoinHandle<()>>,
}

impl FaultyApp {
    /// Starts on an ephemeral port, answering `200` unless told otherwise.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the app");
        let addr = listener.local_addr().expect("app address");
        let shared = Arc::new(AppShared {
            queue: Mutex::new(VecDeque::new()),
            default: Mutex::new(Behaviour::Answer(200)),
            seen: Mutex::new(Vec::new()),
            stopping: watch::Sender::new(false),
        });
        let task = Some(tokio::spawn(accept(listener, Arc::clone(&shared))));
        Self { addr, shared, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues `behaviour` for the next request.
    pub fn push(&self, behaviour: Behaviour) {
        self.shared.queue.lock().unwrap().push_back(behaviour);
    }

    /// Sets what happens when nothing is queued.
    pub fn set_default(&self, behaviour: Behaviour) {
        *self.shared.default.lock().unwrap() = behaviour;
    }

    /// Every request read so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// How many requests were read so far.
    pub fn count(&self) -> usize {
        self.shared.seen.lock().unwrap().len()
    }

    /// How many requests carried event id `id`.
    pub fn count_for(&self, id: &str) -> usize {
        let seen = self.shared.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.event_id.as_deref() == Some(id))
            .count()
    }

    /// Closes the port and every connection (hanging ones included).
    pub async fn stop(&mut self) {
        self.shared.stopping.send_replace(true);
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        assert!(self.task.is_none(), "restart of an app that is running");
        self.shared.stopping.send_replace(false);
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("rebinding the app on {}: {e}", self.addr),
            }
        };
        self.task = Some(tokio::spawn(accept(listener, Arc::clone(&self.shared))));
    }
}

impl Drop for FaultyApp {
    fn drop(&mut self) {
        self.shared.stopping.send_replace(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<AppShared>) {
    let mut stopping = shared.stopping.subscribe();
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(serve_one(stream, Arc::clone(&shared)));
            }
            _ = stopping.wait_for(|s| *s) => break,
        }
    }
    connections.abort_all();
}

/// Reads one request and acts out the next behaviour; the connection closes afterwards.
async fn serve_one(mut stream: TcpStream, shared: Arc<AppShared>) {
    let Some((head, body)) = read_request(&mut stream).await else {
        return;
    };
    let event_id = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("x-hookwarden-event-id")
            .then(|| value.trim().to_owned())
    });
    let behaviour = {
        let next = shared.queue.lock().unwrap().pop_front();
        next.unwrap_or_else(|| *shared.default.lock().unwrap())
    };
    shared.seen.lock().unwrap().push(Seen {
        event_id,
        body,
        at: Instant::now(),
    });

    let reply: Vec<u8> = match behaviour {
        Behaviour::Answer(status) => {
            let body = format!(r#"{{"app_status":{status}}}"#);
            format!(
                "HTTP/1.1 {status} Scripted\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
        Behaviour::Hang => {
            let mut stopping = shared.stopping.subscribe();
            let _ = tokio::time::timeout(Duration::from_secs(60), stopping.wait_for(|s| *s)).await;
            return;
        }
        Behaviour::CloseBeforeAnswer => return,
        Behaviour::CloseMidHead => b"HTTP/1.1 20".to_vec(),
        Behaviour::CloseMidBody => {
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ok\":"
                .to_vec()
        }
    };
    let _ = stream.write_all(&reply).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}

/// The head (as text) and the Content-Length body of one request; `None` if the peer
/// went away first.
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some((head, body))
}

/// Raises this process's soft limit on open files to at least `wanted` (bounded by the
/// hard limit); children started afterwards, the proxy among them, inherit it. Returns
/// the soft limit now in force.
pub fn raise_fd_limit(wanted: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("read RLIMIT_NOFILE");
    if soft >= wanted {
        return soft;
    }
    let target = wanted.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, target, hard).expect("raise RLIMIT_NOFILE");
    target
}

/// Whether this process runs as root (mounting a tmpfs needs it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A tmpfs of a few MiB mounted over a folder, unmounted (lazily, so a process still
/// holding files cannot stop it) when dropped.
pub struct Tmpfs {
    path: PathBuf,
    mounted: bool,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_kib` KiB over `path` (created if missing). Panics with the
    /// reason if the mount fails.
    pub fn mount(path: &Path, size_kib: u64) -> Self {
        std::fs::create_dir_all(path).expect("create the mount point");
        let size = format!("size={size_kib}k");
        run(
            "mount",
            &["-t", "tmpfs", "-o", &size, "tmpfs", &path.to_string_lossy()],
        );
        Self {
            path: path.to_owned(),
            mounted: true,
        }
    }

    /// Fills the disk with a file named `filler` until the file system refuses more;
    /// returns the bytes written.
    pub fn fill(&self) -> u64 {
        use std::io::Write;
        let mut file = std::fs::File::create(self.path.join("filler")).expect("create filler");
        let block = vec![0xA5u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match file.write(&block) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n as u64,
            }
        }
        // Small writes may still fit in the last partial page; take those too.
        while let Ok(n) = file.write(&block[..512]) {
            if n == 0 {
                break;
            }
            written += n as u64;
        }
        let _ = file.sync_all();
        written
    }

    /// Removes the filler, freeing the disk.
    pub fn drain(&self) {
        std::fs::remove_file(self.path.join("filler")).expect("remove filler");
    }

    /// Makes the file system read-only, even for files the proxy holds open.
    pub fn remount_read_only(&self) {
        run(
            "mount",
            &["-o", "remount,ro", "tmpfs", &self.path.to_string_lossy()],
        );
    }

    /// Makes the file system writable again.
    pub fn remount_writable(&self) {
        run(
            "mount",
            &["-o", "remount,rw", "tmpfs", &self.path.to_string_lossy()],
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount")
                .args(["-l", &self.path.to_string_lossy()])
                .status();
            self.mounted = false;
        }
    }
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `hookwarden run` started on a config written into a folder the test prepared (a store
/// on a mount of its own, say), returning as soon as the port accepts TCP, ready or not.
/// Killed when dropped.
pub struct Bare {
    child: std::process::Child,
    addr: SocketAddr,
    admin: SocketAddr,
    log: PathBuf,
}

impl Bare {
    /// Writes `config` into `dir` and starts the binary on a free port.
    pub async fn start(config: &super::ProxyConfig, dir: &Path) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], super::proxy::free_port()));
        let written = config.write(dir, addr);
        let log = dir.join("hookwarden.log");
        let out = std::fs::File::create(&log).expect("create the log");
        let child = Command::new(super::proxy::BIN)
            .arg("run")
            .arg("--config")
            .arg(&written.path)
            .current_dir(dir)
            .env_remove("AJ_WEBHOOK_SHARED_SECRET")
            .envs(written.envs.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().expect("clone the log handle"))
            .stderr(out)
            .spawn()
            .expect("start hookwarden");
        let mut bare = Self {
            child,
            addr,
            admin: written.admin,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).await.is_err() {
            if let Ok(Some(status)) = bare.child.try_wait() {
                panic!("hookwarden exited ({status}); log:\n{}", bare.log());
            }
            assert!(
                Instant::now() < deadline,
                "not listening; log:\n{}",
                bare.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bare
    }

    /// The webhook listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// What the binary wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- hookwarden log:\n{}", self.log());
        }
    }
}

/// A small ext4 file system on a loop device, mounted over a folder with
/// `errors=remount-ro`, so that an error makes the kernel turn it read-only under the
/// proxy's open files, as a failing disk would. Unmounted (lazily) when dropped.
pub struct Ext4 {
    path: PathBuf,
    image: PathBuf,
}

impl Ext4 {
    /// Creates a `size_mib` MiB image beside `path` and mounts it over `path`.
    pub fn mount(path: &Path, size_mib: u64) -> Self {
        std::fs::create_dir_all(path).expect("create the mount point");
        let image = path.with_extension("ext4.img");
        let file = std::fs::File::create(&image).expect("create the image");
        file.set_len(size_mib << 20).expect("size the image");
        run("mkfs.ext4", &["-q", "-F", &image.to_string_lossy()]);
        run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                &image.to_string_lossy(),
                &path.to_string_lossy(),
            ],
        );
        Self {
            path: path.to_owned(),
            image,
        }
    }

    /// Reports a file-system error to ext4, which then remounts itself read-only.
    pub fn fail_to_read_only(&self) {
        let output = Command::new("findmnt")
            .args(["-no", "SOURCE", &self.path.to_string_lossy()])
            .output()
            .expect("run findmnt");
        let source = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let device = source.rsplit('/').next().unwrap_or_default().to_owned();
        let trigger = format!("/sys/fs/ext4/{device}/trigger_fs_error");
        std::fs::write(&trigger, "hookwarden test").unwrap_or_else(|e| panic!("{trigger}: {e}"));
        let probe = self.path.join("probe");
        assert!(
            std::fs::write(&probe, b"x").is_err(),
            "the file system is still writable after the error"
        );
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["-l", &self.path.to_string_lossy()])
            .status();
        let _ = std::fs::remove_file(&self.image);
    }
}
