//! Tollgate's integration tests, linked into one test binary (one link instead of one per file:
//! the dependencies are large, and each binary carried a copy of them).
//!
//! Each module is one capability, tested through the public library, the real `tollgate`
//! binary, a real Prometheus and an in-process fake API server (`support`).

mod support;

mod auth;
mod clusters;
mod console;
mod dashboards;
mod demo_service;
mod deploy;
mod exports;
mod focus;
mod gate_properties;
mod http_api;
mod kyverno_policies;
mod leader;
mod live_watch;
mod moving_demo;
mod prometheus_history;
mod prometheus_usage;
mod quota;
mod report_cli;
mod rolled_days;
mod serve_restart;
mod store;
mod store_cli;
mod tls;
mod tokens;
