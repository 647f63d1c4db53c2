//! Where Kubernetes objects come from: a snapshot directory or the built-in demo fleet. Both
//! hand the core the same [`ClusterObjects`](crate::allocation::ClusterObjects).

pub mod demo;
pub mod snapshot;

pub use demo::{DEMO_DAYS, DemoCluster, DemoFleet, DemoHistory, DemoUtilization, demo_budgets};
pub use snapshot::{SNAPSHOT_FILES, SnapshotError, read_snapshot};
