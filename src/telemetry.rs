//! Logs and metrics. Logs carry ids and outcomes, never personal data or
//! secrets; metric labels carry only values from a fixed set.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init_logs(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("SHOPHUB_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The process-wide Prometheus recorder, installed on first use (several hubs
/// in one test process share it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// A platform name safe to use as a label: hostile path segments must not
/// create new time series.
pub fn platform_label(platform: &str) -> &'static str {
    shophub_connectors::connector(platform).map_or("unknown", |c| c.platform())
}
