//! `hwload`: the load generator of hookwarden's benchmark (see `bench/README.md`).
//!
//! ```text
//! hwload load --addr 127.0.0.1:8080 [--path /webhooks/aj] [--kind unique|duplicate|forged]
//!             [--body-bytes 1024] [--connections 32] [--warmup 2] [--duration 10]
//!             [--rate RPS] [--requests N] [--threads 1] [--run-id ID] [--dup-set 1000]
//!             [--timeout 10] [--report-every SECONDS]
//!             (the route's secret comes from AJ_WEBHOOK_SHARED_SECRET)
//! hwload ports N                  N free loopback ports, space-separated
//! hwload wait ADDR SECONDS        until ADDR accepts TCP connections (exit 1 on time-out)
//! hwload get ADDR PATH            GET, print the body; exit 0 on 2xx
//! ```
//! Deliberately not a general HTTP client: HTTP/1.1 over plain TCP, no pipelining.

mod histogram;
mod http;
mod load;
mod sign;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use load::{Kind, Settings};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("load") => load_command(&args[1..]),
        Some("ports") => ports(&args[1..]),
        Some("wait") => wait(&args[1..]),
        Some("get") => get(&args[1..]),
        _ => Err("usage: hwload load|ports|wait|get ... (see src/main.rs)".to_string()),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("hwload: {message}");
            ExitCode::from(64)
        }
    }
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

fn addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| format!("not an address: {text}"))
}

fn number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{name}: not a number: {text}"))
}

fn load_command(args: &[String]) -> Result<ExitCode, String> {
    let secret = std::env::var("AJ_WEBHOOK_SHARED_SECRET")
        .map_err(|_| "AJ_WEBHOOK_SHARED_SECRET is not set".to_string())?;
    let mut settings = Settings {
        addr: addr("127.0.0.1:8080")?,
        path: "/webhooks/aj".to_string(),
        kind: Kind::Unique,
        body_bytes: 1024,
        connections: 32,
        warmup: Duration::from_secs(2),
        duration: Duration::from_secs(10),
        rate: None,
        requests: None,
        secret: secret.into_bytes(),
        run_id: format!("r{}", std::process::id()),
        dup_set: 1000,
        report_every: None,
        timeout: Duration::from_secs(10),
    };
    let mut threads = 1;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let seconds = |v: &str| number::<f64>(flag, v).map(Duration::from_secs_f64);
        match flag.as_str() {
            "--addr" => settings.addr = addr(value)?,
            "--path" => settings.path = value.clone(),
            "--kind" => {
                settings.kind = Kind::parse(value).ok_or_else(|| format!("unknown kind {value}"))?
            }
            "--body-bytes" => settings.body_bytes = number(flag, value)?,
            "--connections" => settings.connections = number::<usize>(flag, value)?.max(1),
            "--warmup" => settings.warmup = seconds(value)?,
            "--duration" => settings.duration = seconds(value)?,
            "--rate" => settings.rate = Some(number::<f64>(flag, value)?).filter(|r| *r > 0.0),
            "--requests" => settings.requests = Some(number(flag, value)?),
            "--threads" => threads = number(flag, value)?,
            "--run-id" => settings.run_id = value.clone(),
            "--dup-set" => settings.dup_set = number::<usize>(flag, value)?.max(1),
            "--timeout" => settings.timeout = seconds(value)?,
            "--report-every" => settings.report_every = Some(seconds(value)?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let line = runtime(threads).block_on(load::run(settings));
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

fn ports(args: &[String]) -> Result<ExitCode, String> {
    let n: usize = number("count", args.first().map_or("1", String::as_str))?;
    // Hold them all until printed, so the N are distinct.
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let ports: Vec<String> = held
        .iter()
        .map(|l| l.local_addr().map(|a| a.port().to_string()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    println!("{}", ports.join(" "));
    Ok(ExitCode::SUCCESS)
}

fn wait(args: &[String]) -> Result<ExitCode, String> {
    let target = addr(args.first().ok_or("wait ADDR SECONDS")?)?;
    let seconds: f64 = number("seconds", args.get(1).map_or("10", String::as_str))?;
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < until {
        if TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok() {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("hwload: {target} did not accept connections within {seconds} s");
    Ok(ExitCode::FAILURE)
}

fn get(args: &[String]) -> Result<ExitCode, String> {
    let target = addr(args.first().ok_or("get ADDR PATH")?)?;
    let path = args.get(1).map_or("/", String::as_str);
    match runtime(1).block_on(http::get(target, path)) {
        Ok((status, body)) => {
            print!("{}", String::from_utf8_lossy(&body));
            Ok(if (200..300).contains(&status) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => {
            eprintln!("hwload: GET {target}{path}: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
