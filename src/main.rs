//! The `hookwarden` binary: parse the command line, start logging, run the command,
//! exit with its code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use hookwarden::cli::{self, Cli, Exit, LogFormat};
use tracing_subscriber::EnvFilter;

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
/// are captured into the same stream.
fn init_logging(format: Option<LogFormat>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        Some(format) => format == LogFormat::Json,
        None => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
