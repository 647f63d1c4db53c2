//! The live cluster: watchers keep in-memory stores of the objects Tollgate reads.

mod allocations;
mod cluster;
mod lease;
mod list;
mod stores;
mod watch;

pub use allocations::LiveRead;
pub use cluster::ClusterStores;
pub use lease::{Candidate, LeaderSettings, Leadership};
pub use list::list_cluster;
pub use stores::{Changes, KindStore, Strip};
pub use watch::{SourceHealth, spawn_watchers};
