//! Tollgate: what the GPUs held by Kubernetes workloads cost, who spent it, and whether a new pod
//! still fits its team's budget.
//!
//! The crate is a pure core (quantities, allocations, pricing, cost) wrapped by adapters (snapshot
//! reader, demo fleet, CLI). See `ARCHITECTURE.md` for the map.

pub mod allocation;
pub mod budget;
pub mod cli;
pub mod config;
pub mod console;
pub mod cost;
pub mod export;
pub mod ledger;
pub mod live;
pub mod money;
pub mod output;
pub(crate) mod prefetch;
pub mod pricing;
pub mod prometheus;
pub mod quantity;
pub mod reporting;
pub mod serve;
pub mod source;
pub mod store;
pub mod time;
pub mod tokens;
pub mod units;
pub mod usage;
