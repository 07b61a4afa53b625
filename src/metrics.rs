//! Prometheus metrics: definitions, registration, and the label sets that start at zero.
//!
//! Labels are bounded: route names come from the config (plus `-` for requests on no
//! route), outcomes and response classes from fixed sets. Nothing from a request ever
//! becomes a label value.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::outcome::Outcome;

/// The route label of requests that matched no route.
pub const NO_ROUTE: &str = "-";

/// Classes of the app's answers.
pub const UPSTREAM_CLASSES: [&str; 6] = ["2xx", "3xx", "4xx", "5xx", "unavailable", "timeout"];

/// Every metric hookwarden exports.
pub struct Metrics {
    registry: Registry,
    /// Requests by route and outcome.
    pub requests: IntCounterVec,
    /// End-to-end request time by route and outcome.
    pub request_duration: HistogramVec,
    /// Signature verification time by route.
    pub verify_duration: HistogramVec,
    /// Time from sending to the app until its response header, by route.
    pub upstream_duration: HistogramVec,
    /// The app's answers by route and class.
    pub upstream_responses: IntCounterVec,
    /// Our clock minus the signed time, by route.
    pub timestamp_skew: HistogramVec,
    /// Records in the replay store, as of the last sweep.
    pub store_entries: IntGauge,
    /// The replay store's size on disk.
    pub store_disk_bytes: IntGauge,
    /// Sweeps run.
    pub store_sweeps: IntCounter,
    /// Records removed by sweeps.
    pub store_swept_records: IntCounter,
    /// Store operations that failed, by operation.
    pub store_errors: IntCounterVec,
    /// Claims made in the local store because the shared one was unreachable.
    pub store_fallbacks: IntCounter,
    /// Time to record a processed event durably (including the flush with `sync = "always"`).
    pub store_commit_duration: Histogram,
    /// Secrets re-read after their file changed, by route.
    pub secret_reloads: IntCounterVec,
    /// Verified deliveries by route and the id of the key that verified them.
    pub verified: IntCounterVec,
    /// Requests a shadow-mode route forwarded although they would have been refused.
    pub shadow_refusals: IntCounterVec,
}

/// Store operations, for the error counter.
pub const STORE_OPS: [&str; 6] = ["open", "claim", "commit", "release", "sweep", "probe"];

impl Metrics {
    /// Registers every metric and starts the known label combinations at zero.
    pub fn new<'a>(routes: impl IntoIterator<Item = &'a str> + Clone) -> Metrics {
        let registry = Registry::new();
        let r = &registry;

        let build_info = register(
            r,
            IntGaugeVec::new(
                Opts::new("hookwarden_build_info", "Build information; always 1."),
                &["version"],
            ),
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        let latency = prometheus::exponential_buckets(0.0005, 2.0, 16).unwrap_or_default();
        let micros = prometheus::exponential_buckets(1e-6, 2.5, 14).unwrap_or_default();
        let skew = vec![
            -300.0, -120.0, -60.0, -30.0, -10.0, -5.0, -1.0, 0.0, 1.0, 5.0, 10.0, 30.0, 60.0,
            120.0, 300.0,
        ];

        let metrics = Metrics {
            requests: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "hookwarden_requests_total",
                        "Requests answered, by route and outcome.",
                    ),
                    &["route", "outcome"],
                ),
            ),
            request_duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "hookwarden_request_duration_seconds",
                        "Time from request header to the end of the answer, by route and outcome.",
                    )
                    .buckets(latency.clone()),
                    &["route", "outcome"],
                ),
            ),
            verify_duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "hookwarden_verify_duration_seconds",
                        "Time spent verifying a signature and timestamp, by route.",
                    )
                    .buckets(micros),
                    &["route"],
                ),
            ),
            upstream_duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "hookwarden_upstream_duration_seconds",
                        "Time from forwarding to the app until its response header, by route.",
                    )
                    .buckets(latency.clone()),
                    &["route"],
                ),
            ),
            upstream_responses: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "hookwarden_upstream_responses_total",
                        "The app's answers to forwarded deliveries, by route and class.",
                    ),
                    &["route", "class"],
                ),
            ),
            timestamp_skew: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "hookwarden_timestamp_skew_seconds",
                        "Our clock minus the signed time of deliveries with a readable timestamp.",
                    )
                    .buckets(skew),
                    &["route"],
                ),
            ),
            store_entries: register(
                r,
                IntGauge::new(
                    "hookwarden_store_entries",
                    "Records (event ids and signatures) in the replay store at the last sweep.",
                ),
            ),
            store_disk_bytes: register(
                r,
                IntGauge::new(
                    "hookwarden_store_disk_bytes",
                    "Size of the replay store on disk.",
                ),
            ),
            store_sweeps: register(
                r,
                IntCounter::new(
                    "hookwarden_store_sweeps_total",
                    "Sweeps of expired records run.",
                ),
            ),
            store_swept_records: register(
                r,
                IntCounter::new(
                    "hookwarden_store_swept_records_total",
                    "Expired records removed by sweeps.",
                ),
            ),
            store_errors: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "hookwarden_store_errors_total",
                        "Failed replay store operations.",
                    ),
                    &["operation"],
                ),
            ),
            store_fallbacks: register(
                r,
                IntCounter::new(
                    "hookwarden_store_fallbacks_total",
                    "Claims made in the local store while the shared store was unreachable.",
                ),
            ),
            store_commit_duration: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "hookwarden_store_commit_duration_seconds",
                        "Time to record a processed event, flush included when sync is always.",
                    )
                    .buckets(latency),
                ),
            ),
            secret_reloads: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "hookwarden_secret_reloads_total",
                        "Secrets re-read after their file changed, by route.",
                    ),
                    &["route"],
                ),
            ),
            verified: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "hookwarden_verified_total",
                        "Deliveries that verified, by route and the id of the key that verified.",
                    ),
                    &["route", "key"],
                ),
            ),
            shadow_refusals: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "hookwarden_shadow_refusals_total",
                        "Requests forwarded by a shadow-mode route that enforcement would refuse.",
                    ),
                    &["route", "outcome"],
                ),
            ),
            registry,
        };

        metrics.start_at_zero(routes);
        metrics
    }

    fn start_at_zero<'a>(&self, routes: impl IntoIterator<Item = &'a str> + Clone) {
        for route in routes.clone() {
            for outcome in Outcome::ALL {
                if !matches!(outcome, Outcome::NoRoute | Outcome::Passthrough) {
                    self.requests.with_label_values(&[route, outcome.label()]);
                    self.request_duration
                        .with_label_values(&[route, outcome.label()]);
                }
            }
            for class in UPSTREAM_CLASSES {
                self.upstream_responses.with_label_values(&[route, class]);
            }
            self.secret_reloads.with_label_values(&[route]);
            self.verify_duration.with_label_values(&[route]);
            self.upstream_duration.with_label_values(&[route]);
            self.timestamp_skew.with_label_values(&[route]);
        }
        for outcome in [
            Outcome::NoRoute,
            Outcome::Passthrough,
            Outcome::InvalidFraming,
        ] {
            self.requests
                .with_label_values(&[NO_ROUTE, outcome.label()]);
            self.request_duration
                .with_label_values(&[NO_ROUTE, outcome.label()]);
        }
        for op in STORE_OPS {
            self.store_errors.with_label_values(&[op]);
        }
    }

    /// Starts a route's key and shadow-mode series at zero.
    pub fn start_route(&self, route: &str, key_ids: &[String], shadow: bool) {
        for key in key_ids {
            self.verified.with_label_values(&[route, key]);
        }
        if shadow {
            for outcome in Outcome::ALL.iter().filter(|o| o.refusal().is_some()) {
                self.shadow_refusals
                    .with_label_values(&[route, outcome.label()]);
            }
            self.shadow_refusals
                .with_label_values(&[route, Outcome::Duplicate.label()]);
        }
    }

    /// Counts one finished request.
    pub fn observe_request(&self, route: &str, outcome: Outcome, elapsed: Duration) {
        let labels = [route, outcome.label()];
        self.requests.with_label_values(&labels).inc();
        self.request_duration
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one answer (or failure) of the app.
    pub fn observe_upstream(&self, route: &str, class: &str, elapsed: Duration) {
        self.upstream_responses
            .with_label_values(&[route, class])
            .inc();
        self.upstream_duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a failed store operation (one of [`STORE_OPS`]).
    pub fn store_error(&self, operation: &str) {
        self.store_errors.with_label_values(&[operation]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// The class label of an app's status code.
pub fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: Result<M, prometheus::Error>,
) -> M {
    // Names and labels are fixed literals: a failure here is a programming error.
    let metric = metric.expect("metric definitions are valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_combinations_start_at_zero() {
        let metrics = Metrics::new(["aj"]);
        let text = String::from_utf8(metrics.render()).unwrap();
        assert!(text
            .contains("hookwarden_requests_total{outcome=\"invalid_signature\",route=\"aj\"} 0"));
        assert!(
            text.contains("hookwarden_upstream_responses_total{class=\"timeout\",route=\"aj\"} 0")
        );
        assert!(text.contains("hookwarden_requests_total{outcome=\"no_route\",route=\"-\"} 0"));
        assert!(text.contains(&format!(
            "hookwarden_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    fn every_metric_has_help() {
        let metrics = Metrics::new(["aj"]);
        metrics.start_route("aj", &["0".to_string()], true);
        let text = String::from_utf8(metrics.render()).unwrap();
        let types = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP")).count();
        assert_eq!(types, helps);
        assert_eq!(types, 17, "{text}");
    }

    #[test]
    fn observing_moves_exactly_one_series() {
        let metrics = Metrics::new(["aj"]);
        metrics.observe_request("aj", Outcome::Duplicate, Duration::from_millis(3));
        assert_eq!(
            metrics
                .requests
                .with_label_values(&["aj", "duplicate"])
                .get(),
            1
        );
        assert_eq!(
            metrics
                .requests
                .with_label_values(&["aj", "forwarded"])
                .get(),
            0
        );
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(503), "5xx");
    }
}
