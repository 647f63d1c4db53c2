//! Budgets and the quota decision (SPEC §5): may this pod start, given what its cost center and
//! namespace have spent this month, what they burn now, and what the pod would add?
//!
//! Everything here is pure: budgets are validated values, spend is an index built from the
//! ledger's view, and a decision is a function of those and the prospective pod.

mod claimed;
mod clusters;
mod decision;
mod limits;
mod model;
mod placed;
mod prospect;
mod reservations;
mod spend;

#[cfg(test)]
mod tests;

pub use claimed::Relief;
pub use clusters::OtherClusters;
pub use decision::{QuotaDecision, QuotaInput, decide, with_failure_mode};
pub use limits::{Budget, BudgetError, BudgetScope, RawBudget, validate_budgets};
pub use model::{MAX_UNITS, ProspectError};
pub use placed::Placements;
pub use prospect::{
    Prospect, ProspectContext, prospect_from_count, prospect_from_pod, prospect_without_gpus,
};
pub use reservations::{Arrival, ArrivalLog, Arrivals, PodIdentity, Reservation, Reservations};
pub use spend::{SpendIndex, StoredSpend, Usage, month_of};
