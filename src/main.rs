//! The `hookwarden` binary: parse the command line, start logging, run the command,
//! exit with its code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use hookwarden::cli::{self, Cli, Exit, LogFormat};
use tracing_subscriber::filter::{filter_fn, FilterExt, LevelFilter};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// jemalloc rather than glibc's malloc: the request path allocates and frees many small
/// buffers on one thread while sled's threads free them on others (bench/README.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return ExitCode::from(if usage {
                Exit::Usage as u8
            } else {
                Exit::Ok as u8
            });
        }
    };

    init_logging(cli.log_format);
    ExitCode::from(cli::execute(cli.command) as u8)
}

/// `tracing` to stderr, level from `RUST_LOG` (default `info`); pingora's `log` records
/// are captured into the same stream. pingora's own records are capped at info whatever
/// `RUST_LOG` says: at debug and trace it prints raw request headers, signatures included.
fn init_logging(format: Option<LogFormat>) {
    let wanted = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // The hint matters: it sets the `log` crate's level, so that sled's and pingora's
    // debug records are not built and dispatched only to be dropped (a profile showed
    // them on every request).
    let hint = wanted.max_level_hint().unwrap_or(LevelFilter::TRACE);
    let quiet_pingora = filter_fn(|meta| {
        !meta.target().starts_with("pingora") || *meta.level() <= tracing::Level::INFO
    })
    .with_max_level_hint(hint);
    let json = match format {
        Some(format) => format == LogFormat::Json,
        None => !std::io::stderr().is_terminal(),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let layer = if json {
        layer.json().boxed()
    } else {
        layer.boxed()
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(wanted.and(quiet_pingora)))
        .init();
}
