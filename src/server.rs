//! Builds the pingora server from a config and runs it until a signal stops it.
//!
//! Two pingora services share one process: the verifying proxy and the admin endpoints.
//! Beside them run plain threads for the slow, periodic work: opening the store until it
//! opens, sweeping it, re-reading secret files, and a shutdown watcher that ends the
//! process as soon as in-flight requests are done after SIGTERM, instead of sleeping
//! through pingora's whole grace period.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use pingora::apps::http_app::HttpServer;
use pingora::server::configuration::ServerConf;
use pingora::server::{ExecutionPhase, Server};
use pingora::services::listening::Service;
use thiserror::Error;

use crate::admin::Admin;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::proxy::{Hookwarden, Shared};
use crate::store::{self, Store, StoreSlot};

/// How often secret files are checked for changes.
const SECRET_POLL: Duration = Duration::from_secs(2);

/// How long to wait between attempts to open the store.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// How often the store is probed, so readiness follows a shared store's health.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// How long the first probe may take at startup.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    /// A listen address is taken or not ours.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's reason.
        reason: String,
    },
}

/// Starts the proxy and blocks until it is stopped; exits the process when done.
pub fn run(config: Config) -> Result<(), ServerError> {
    // pingora retries a failed bind and then carries on without the listener; find out
    // first, so a taken port is a clear error and a non-zero exit.
    for addr in [config.server.listen, config.server.admin_listen] {
        TcpListener::bind(addr).map_err(|e| ServerError::Bind {
            addr,
            reason: e.to_string(),
        })?;
    }

    let metrics = Arc::new(Metrics::new(config.routes.iter().map(|r| r.name.as_str())));
    for route in &config.routes {
        metrics.start_route(&route.name, &route.key_ids, !route.enforce);
    }
    let store = Arc::new(StoreSlot::default());
    let in_flight = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicBool::new(false));
    let grace = config.server.shutdown_grace;
    let (listen, admin_listen) = (config.server.listen, config.server.admin_listen);
    let config = Arc::new(ArcSwap::from_pointee(config));

    let conf = ServerConf {
        threads: config.load().server.threads,
        grace_period_seconds: Some(grace.as_secs()),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let shared = Shared {
        config: config.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        in_flight: in_flight.clone(),
    };
    let mut proxy =
        pingora::proxy::http_proxy_service(&server.configuration, Hookwarden::new(shared));
    proxy.add_tcp(&listen.to_string());
    server.add_service(proxy);

    let admin = Admin::new(metrics.clone(), store.clone(), running.clone());
    let mut admin = Service::new("admin".to_string(), HttpServer::new_app(admin));
    admin.threads = Some(1);
    admin.add_tcp(&admin_listen.to_string());
    server.add_service(admin);

    let _store_runtime = open_store(config.clone(), store.clone(), metrics.clone());
    reload_secrets(config.clone(), metrics);
    watch_phases(&server, store, in_flight, running, grace);

    let routes = config.load().routes.len();
    tracing::info!(%listen, %admin_listen, routes, "hookwarden starting");
    server.run_forever();
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(work)
        .expect("the OS lets us start a thread at startup");
}

/// Opens the store, then sweeps and probes it forever on a small runtime of its own
/// (which also carries a Redis connection's driver). The first attempt happens before
/// the listeners start, so a healthy start serves at once; if it fails, the proxy comes
/// up not ready and this keeps trying.
fn open_store(
    config: Arc<ArcSwap<Config>>,
    slot: Arc<StoreSlot>,
    metrics: Arc<Metrics>,
) -> tokio::runtime::Runtime {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("store")
        .enable_all()
        .build()
        .expect("the OS lets us start a thread at startup");

    let settings = config.load().store.clone();
    let path = settings.path.display().to_string();
    let opened = runtime.block_on(async {
        let store = Store::open(&settings)?;
        // Connect now (Redis connects lazily), so readiness is known from the start.
        let _ = tokio::time::timeout(PROBE_TIMEOUT, store.probe()).await;
        Ok::<_, store::StoreError>(store)
    });
    match opened {
        Ok(store) => slot.fill(store),
        Err(error) => {
            metrics.store_error("open");
            tracing::warn!(%error, path, "cannot open the replay store; retrying");
        }
    }

    runtime.spawn(async move {
        let mut failures = 0u64;
        let store = loop {
            if let Some(store) = slot.get() {
                break store.clone();
            }
            tokio::time::sleep(STORE_RETRY).await;
            match Store::open(&settings) {
                Ok(store) => {
                    slot.fill(store);
                    tracing::info!(path, "replay store open");
                }
                Err(error) => {
                    metrics.store_error("open");
                    failures += 1;
                    if failures % 30 == 0 {
                        let message = "still cannot open the replay store";
                        tracing::warn!(%error, path, failures, message);
                    }
                }
            }
        };

        let mut next_sweep = tokio::time::Instant::now();
        let mut was_healthy = true;
        loop {
            // Log the changes only: a long outage is one warning, not one every probe.
            let probed = store.probe().await;
            let backend = store.backend();
            match (&probed, was_healthy) {
                (Err(error), true) => tracing::warn!(%error, backend, "replay store failing"),
                (Ok(()), false) => tracing::info!(backend, "replay store healthy again"),
                _ => {}
            }
            if probed.is_err() {
                metrics.store_error("probe");
            }
            was_healthy = probed.is_ok();
            if tokio::time::Instant::now() >= next_sweep {
                let swept = store.sweep(store::now_ms()).await;
                measure_store(&store, &metrics, swept);
                next_sweep = tokio::time::Instant::now() + settings.sweep_interval;
            }
            tokio::time::sleep(PROBE_INTERVAL.min(settings.sweep_interval)).await;
        }
    });
    runtime
}

fn measure_store(
    store: &Store,
    metrics: &Metrics,
    swept: Result<store::SweepReport, store::StoreError>,
) {
    match swept {
        Ok(report) => {
            metrics.store_sweeps.inc();
            metrics.store_swept_records.inc_by(report.removed);
            if let Some(entries) = report.entries {
                metrics.store_entries.set(entries as i64);
            }
            tracing::debug!(
                scanned = report.scanned,
                removed = report.removed,
                "store swept"
            );
        }
        Err(error) => {
            metrics.store_error("sweep");
            tracing::warn!(%error, "store sweep failed");
        }
    }
    if let Some(bytes) = store.disk_bytes() {
        metrics.store_disk_bytes.set(bytes as i64);
    }
}

/// Re-reads secret files that Kubernetes (or an operator) replaced, without a restart.
fn reload_secrets(config: Arc<ArcSwap<Config>>, metrics: Arc<Metrics>) {
    spawn("secrets", move || loop {
        std::thread::sleep(SECRET_POLL);
        let current = config.load_full();
        let mut next = (*current).clone();
        let mut changed = false;
        for route in &mut next.routes {
            match route.reread_secrets() {
                Ok(Some(secrets)) => {
                    route.secrets = secrets;
                    changed = true;
                    metrics
                        .secret_reloads
                        .with_label_values(&[&route.name])
                        .inc();
                    tracing::info!(route = %route.name, "secret changed; now in use");
                }
                Ok(None) => {}
                Err(error) => {
                    let route = &route.name;
                    tracing::warn!(route, %error, "cannot re-read a secret; keeping the old one");
                }
            }
        }
        if changed {
            config.store(Arc::new(next));
        }
    });
}

/// Follows pingora's lifecycle: ready once running; after SIGTERM, ends the process
/// once the requests in flight are done (or the grace is up), with the store flushed.
fn watch_phases(
    server: &Server,
    store: Arc<StoreSlot>,
    in_flight: Arc<AtomicUsize>,
    running: Arc<AtomicBool>,
    grace: Duration,
) {
    let mut phases = server.watch_execution_phase();
    spawn("lifecycle", move || {
        while let Ok(phase) = phases.blocking_recv() {
            match phase {
                ExecutionPhase::Running => running.store(true, Ordering::SeqCst),
                ExecutionPhase::ShutdownStarted => {
                    running.store(false, Ordering::SeqCst);
                    tracing::info!("shutting down: no new connections");
                }
                ExecutionPhase::ShutdownGracePeriod | ExecutionPhase::ShutdownRuntimes => {
                    let until = Instant::now() + grace;
                    while in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    let abandoned = in_flight.load(Ordering::SeqCst);
                    if let Some(store) = store.get() {
                        flush_blocking(store);
                    }
                    tracing::info!(abandoned, "hookwarden stopped");
                    std::process::exit(0);
                }
                _ => {}
            }
        }
    });
}

fn flush_blocking(store: &Store) {
    let flushed = tokio::runtime::Builder::new_current_thread()
        .build()
        .map(|rt| rt.block_on(store.flush()));
    if let Ok(Err(error)) = flushed {
        tracing::warn!(%error, "could not flush the store at shutdown");
    }
}
