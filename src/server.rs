//! Builds the pingora server from a config and runs it until a signal stops it.
//!
//! Besides the proxy service, this starts two plain threads: the store's sweeper, and a
//! shutdown watcher that ends the process as soon as in-flight requests are done after
//! SIGTERM, instead of sleeping through pingora's whole grace period.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::server::configuration::ServerConf;
use pingora::server::{ExecutionPhase, Server};
use thiserror::Error;

use crate::config::Config;
use crate::proxy::Hookwarden;
use crate::store::{self, Store, StoreError};

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The listen address is taken or not ours.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The store could not be opened.
    #[error("cannot open the replay store at {path}: {source}")]
    Store {
        /// The store directory.
        path: String,
        /// What failed.
        source: StoreError,
    },
}

/// Starts the proxy and blocks until it is stopped; exits the process when done.
pub fn run(config: Config) -> Result<(), ServerError> {
    let config = Arc::new(config);

    // pingora retries a failed bind and then carries on without the listener; find out
    // first, so a taken port is a clear error and a non-zero exit.
    let listen = config.server.listen;
    TcpListener::bind(listen).map_err(|e| ServerError::Bind {
        addr: listen.to_string(),
        reason: e.to_string(),
    })?;

    let store = Store::open(&config.store).map_err(|source| ServerError::Store {
        path: config.store.path.display().to_string(),
        source,
    })?;

    let grace = config.server.shutdown_grace;
    let conf = ServerConf {
        threads: config.server.threads,
        grace_period_seconds: Some(grace.as_secs()),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let in_flight = Arc::new(AtomicUsize::new(0));
    let proxy = Hookwarden::new(config.clone(), store.clone(), in_flight.clone());
    let mut service = pingora::proxy::http_proxy_service(&server.configuration, proxy);
    service.add_tcp(&listen.to_string());
    server.add_service(service);

    spawn_sweeper(store.clone(), config.store.sweep_interval);
    watch_shutdown(&server, store, in_flight, grace);

    tracing::info!(%listen, routes = config.routes.len(), "hookwarden listening");
    server.run_forever();
}

fn spawn_sweeper(store: Store, every: Duration) {
    std::thread::Builder::new()
        .name("store-sweeper".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            match store.sweep(store::now_ms()) {
                Ok(report) => tracing::debug!(
                    scanned = report.scanned,
                    removed = report.removed,
                    "store sweep done"
                ),
                Err(error) => tracing::warn!(%error, "store sweep failed"),
            }
        })
        .expect("spawning a thread at startup");
}

/// After SIGTERM pingora stops accepting and then sleeps the whole grace period; this
/// ends the process once the requests in flight are done (or the grace is up), with the
/// store flushed.
fn watch_shutdown(server: &Server, store: Store, in_flight: Arc<AtomicUsize>, grace: Duration) {
    let mut phases = server.watch_execution_phase();
    std::thread::Builder::new()
        .name("shutdown-watch".into())
        .spawn(move || {
            while let Ok(phase) = phases.blocking_recv() {
                let draining = matches!(
                    phase,
                    ExecutionPhase::ShutdownGracePeriod | ExecutionPhase::ShutdownRuntimes
                );
                if !draining {
                    continue;
                }
                let until = Instant::now() + grace;
                while in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let left = in_flight.load(Ordering::SeqCst);
                flush_blocking(&store);
                tracing::info!(abandoned = left, "hookwarden stopped");
                std::process::exit(0);
            }
        })
        .expect("spawning a thread at startup");
}

fn flush_blocking(store: &Store) {
    let flushed = tokio::runtime::Builder::new_current_thread()
        .build()
        .map(|rt| rt.block_on(store.flush()));
    if let Ok(Err(error)) = flushed {
        tracing::warn!(%error, "could not flush the store at shutdown");
    }
}
