//! Leader election over a `coordination.k8s.io/v1` Lease, the way client-go does it, so that
//! of several replicas exactly one writes the ledger and the rollups.
//!
//! Every `retry_seconds` each replica reads the Lease. It takes or renews it — a `replace` that
//! carries the `resourceVersion` it read, so that of two racing replicas one gets a 409 — when
//! it holds it already, when nobody does, or when the holder's `renewTime` has not changed for
//! `lease_seconds` by this replica's own clock (no cross-node clock comparison). A leader that
//! could not renew for two thirds of `lease_seconds` stops writing before anyone may take
//! over, so two replicas never write at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use serde::Deserialize;
use tokio::sync::watch;

/// `[leader]`
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LeaderSettings {
    /// Elect one writer among replicas (default false: this process writes).
    pub enabled: bool,
    /// The Lease's name (default `tollgate`).
    pub lease: String,
    /// Its namespace (default: `POD_NAMESPACE`, else `default`).
    pub namespace: Option<String>,
    /// This replica's name in the Lease (default: `POD_NAME`, else `HOSTNAME`).
    pub identity: Option<String>,
    /// Seconds a leader holds the Lease without renewing it (default 15).
    pub lease_seconds: u32,
    /// Seconds between two attempts to take or renew it (default 2).
    pub retry_seconds: u32,
    /// Seconds between two reads of the ledger by a follower (default 10).
    pub follow_seconds: u32,
}

impl Default for LeaderSettings {
    fn default() -> Self {
        LeaderSettings {
            enabled: false,
            lease: "tollgate".into(),
            namespace: None,
            identity: None,
            lease_seconds: 15,
            retry_seconds: 2,
            follow_seconds: 10,
        }
    }
}

impl LeaderSettings {
    /// The namespace of the Lease.
    pub fn namespace(&self) -> String {
        self.namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into())
    }

    /// This replica's identity.
    pub fn identity(&self) -> Result<String, String> {
        self.identity
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| "leader.identity: unset, and neither POD_NAME nor HOSTNAME is".into())
    }
}

/// Whether this replica is the one that writes: until a deadline its last renewal set, read
/// at every use, so that a leader whose campaign stalls (a starved process, a hung API call)
/// stops writing on time even before its next attempt says it lost.
#[derive(Clone, Debug, Default)]
pub struct Leadership(Option<watch::Receiver<Option<Instant>>>);

impl Leadership {
    /// True while this replica holds the Lease, renewed less than two thirds of its duration
    /// ago (always, without an election).
    pub fn is_leader(&self) -> bool {
        self.0
            .as_ref()
            .is_none_or(|until| until.borrow().is_some_and(|until| Instant::now() < until))
    }

    /// A leadership to be decided by an election: a follower until its [`Candidate`] wins.
    pub fn contested() -> (Self, Candidate) {
        let (sender, receiver) = watch::channel(None);
        (Leadership(Some(receiver)), Candidate(sender))
    }
}

/// The side of a contested [`Leadership`] that campaigns.
#[derive(Debug)]
pub struct Candidate(watch::Sender<Option<Instant>>);

impl Candidate {
    /// Leads until `until` (`None`: follows), as a campaign's round would say.
    #[cfg(test)]
    pub(crate) fn lead_until(&self, until: Option<Instant>) {
        self.0.send_replace(until);
    }

    /// Campaigns for the Lease `settings` name, in the background, for as long as the
    /// leadership is watched.
    pub fn campaign(self, client: kube::Client, settings: &LeaderSettings) -> Result<(), String> {
        let mut campaign = Campaign {
            api: Api::namespaced(client, &settings.namespace()),
            name: settings.lease.clone(),
            identity: settings.identity()?,
            lease: Duration::from_secs(settings.lease_seconds.max(3).into()),
            observed: None,
            renewed_at: None,
        };
        let retry = Duration::from_secs(settings.retry_seconds.max(1).into());
        let sender = self.0;
        tokio::spawn(async move {
            let mut announced = None;
            loop {
                let until = campaign.round().await;
                let leading = until.is_some_and(|until| Instant::now() < until);
                if announced != Some(leading) {
                    announced = Some(leading);
                    let (lease, identity) = (&campaign.name, &campaign.identity);
                    if leading {
                        tracing::info!(%lease, %identity, "leading: this replica writes the ledger and rollups");
                    } else {
                        tracing::info!(%lease, %identity, "following: another replica writes the ledger");
                    }
                }
                if sender.send(until).is_err() {
                    return;
                }
                tokio::time::sleep(retry).await;
            }
        });
        Ok(())
    }
}

/// A holder and renewal time as last read, and when this replica saw them change.
struct Observed {
    holder: Option<String>,
    renewed: Option<MicroTime>,
    duration: Duration,
    seen_at: Instant,
}

struct Campaign {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease: Duration,
    observed: Option<Observed>,
    renewed_at: Option<Instant>,
}

impl Campaign {
    /// One attempt; returns until when this replica may write: two thirds of the Lease's
    /// duration after the start of its last renewal (`None`: it does not lead). Counted from
    /// before the request went out, the deadline passes before any other replica, which waits
    /// a whole duration from when it saw that renewal, may take over.
    async fn round(&mut self) -> Option<Instant> {
        let started = Instant::now();
        match self.try_lead().await {
            Ok(leading) => self.renewed_at = leading.then_some(started),
            // The last renewal's deadline stands: writing goes on only while nobody else may
            // have taken over.
            Err(e) => {
                tracing::warn!(error = %e, lease = %self.name, "the lease could not be read or renewed")
            }
        }
        self.renewed_at.map(|at| at + self.lease * 2 / 3)
    }

    async fn try_lead(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let seconds = i32::try_from(self.lease.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_duration_seconds: Some(seconds),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return conflict_is_no(self.api.create(&PostParams::default(), &lease).await);
        };
        let spec = lease.spec.get_or_insert_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|o| o.holder != holder || o.renewed != spec.renew_time);
        if changed {
            self.observed = Some(Observed {
                holder: holder.clone(),
                renewed: spec.renew_time.clone(),
                duration: Duration::from_secs(
                    spec.lease_duration_seconds
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(self.lease.as_secs()),
                ),
                seen_at: Instant::now(),
            });
        }
        let mine = holder.as_deref() == Some(self.identity.as_str());
        let expired = self
            .observed
            .as_ref()
            .is_some_and(|o| o.seen_at.elapsed() >= o.duration);
        if holder.is_some() && !mine && !expired {
            return Ok(false);
        }
        if !mine {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            spec.holder_identity = Some(self.identity.clone());
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(seconds);
        conflict_is_no(
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await,
        )
    }
}

/// A write that lost a race (409) means another replica got there first.
fn conflict_is_no(result: Result<Lease, kube::Error>) -> Result<bool, kube::Error> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lead_runs_out_at_its_deadline_without_another_word_from_the_campaign() {
        assert!(Leadership::default().is_leader(), "without an election");
        let (leadership, campaign) = Leadership::contested();
        assert!(!leadership.is_leader(), "a follower until it wins");
        // A renewal gives half a second of lead; then the campaign stalls and sends nothing.
        campaign.lead_until(Some(Instant::now() + Duration::from_millis(500)));
        assert!(leadership.is_leader());
        std::thread::sleep(Duration::from_millis(600));
        assert!(
            !leadership.is_leader(),
            "the stalled leader stops by itself"
        );
        campaign.lead_until(None);
        assert!(!leadership.clone().is_leader());
    }
}
