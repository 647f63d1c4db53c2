//! What a pod's DRA claims ask for before any device is allocated to them: the requests of the
//! `ResourceClaim` it names, or of the `ResourceClaimTemplate` its claim will be made from. The
//! quota check prices a pod from these before the scheduler has placed it (SPEC §5).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::PodResourceClaim;
use k8s_openapi::api::resource::v1::{
    DeviceClaim, DeviceSelector, ExactDeviceRequest, ResourceClaim, ResourceClaimTemplate,
    ResourceSlice,
};
use rustc_hash::FxHashMap;

use super::claims::{AMD_DRIVER, DeviceIndex, NVIDIA_DRIVER, ShareableGpu};

/// What the devices of a `DeviceClass` are, as far as cost goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceClass {
    /// Whole GPUs: NVIDIA's `gpu.nvidia.com`, AMD's `gpu.amd.com`.
    Gpu,
    /// MIG slices of NVIDIA GPUs: `mig.nvidia.com`.
    Mig,
    /// NVIDIA's ComputeDomain channels and daemons: no GPU of their own.
    NotGpu,
    /// A class Tollgate does not know (a site's own, a NIC's): counted as GPUs, and said.
    Unknown,
}

impl DeviceClass {
    /// The kind of devices a `DeviceClass` of this name gives.
    pub fn of(name: &str) -> Self {
        match name {
            // Each driver names its GPUs' class after itself.
            NVIDIA_DRIVER | AMD_DRIVER => DeviceClass::Gpu,
            "mig.nvidia.com" => DeviceClass::Mig,
            "compute-domain-daemon.nvidia.com" | "compute-domain-default-channel.nvidia.com" => {
                DeviceClass::NotGpu
            }
            _ => DeviceClass::Unknown,
        }
    }
}

/// How many devices a request takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceCount {
    /// `allocationMode: ExactCount` (the default) and its `count` (1 by default).
    Exactly(i64),
    /// `allocationMode: All`: every matching device of the node it lands on.
    All,
}

/// One way a request can be met: its `exactly`, or one of its `firstAvailable` alternatives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAsk {
    /// The `deviceClassName`.
    pub class_name: String,
    /// What that class's devices are.
    pub class: DeviceClass,
    /// How many.
    pub count: DeviceCount,
    /// The quoted texts its CEL selectors compare with: a `productName`, a MIG `profile`.
    pub texts: Vec<String>,
    /// The part of a device's capacity it asks for, by capacity name, as written (KEP-5075
    /// consumable capacity, `20Gi`); empty: whole devices.
    pub capacity: BTreeMap<String, String>,
    /// `adminAccess`: access to devices in use by others, for monitoring; it takes none.
    pub admin: bool,
}

/// One request of a claim and the ways it can be met (one, or its alternatives in order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestAsk {
    /// The request's name.
    pub name: String,
    /// Its `exactly`, or its `firstAvailable` alternatives.
    pub ways: Vec<DeviceAsk>,
}

/// What a claim or a claim template asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimAsk {
    /// What it is, for messages: `ResourceClaimTemplate team-a/eight-h100`.
    pub describes: String,
    /// Its device requests.
    pub requests: Vec<RequestAsk>,
    /// For a claim that exists: the UIDs of the pods it is reserved for, who share it.
    pub reserved_for: Vec<String>,
}

impl ClaimAsk {
    /// For each of its requests that only GPU devices meet, the drivers of which one must
    /// publish devices on the node of a pod holding the claim (`mig.nvidia.com` devices are
    /// `gpu.nvidia.com`'s). A request one of whose ways takes a device of another class, or
    /// none (admin access), needs none.
    pub fn drivers_needed(&self) -> Vec<BTreeSet<&str>> {
        self.requests
            .iter()
            .filter_map(|request| {
                request
                    .ways
                    .iter()
                    .map(|way| match way.class {
                        _ if way.admin => None,
                        DeviceClass::Gpu => Some(way.class_name.as_str()),
                        DeviceClass::Mig => Some(NVIDIA_DRIVER),
                        DeviceClass::NotGpu | DeviceClass::Unknown => None,
                    })
                    .collect::<Option<BTreeSet<&str>>>()
                    .filter(|drivers| !drivers.is_empty())
            })
            .collect()
    }
}

/// The quoted texts of CEL expressions (`'…'` or `"…"`).
fn quoted_texts(selectors: Option<&Vec<DeviceSelector>>) -> Vec<String> {
    let mut texts = Vec::new();
    for expression in selectors
        .into_iter()
        .flatten()
        .filter_map(|s| s.cel.as_ref())
    {
        let mut chars = expression.expression.chars();
        while let Some(c) = chars.next() {
            if c != '\'' && c != '"' {
                continue;
            }
            let mut text = String::new();
            while let Some(inner) = chars.next() {
                match inner {
                    '\\' => text.extend(chars.next()),
                    quote if quote == c => break,
                    other => text.push(other),
                }
            }
            if !text.is_empty() && !texts.contains(&text) {
                texts.push(text);
            }
        }
    }
    texts
}

fn device_ask(request: &ExactDeviceRequest) -> DeviceAsk {
    let class_name = &request.device_class_name;
    DeviceAsk {
        class_name: class_name.clone(),
        class: DeviceClass::of(class_name),
        count: match request.allocation_mode.as_deref() {
            Some("All") => DeviceCount::All,
            _ => DeviceCount::Exactly(request.count.unwrap_or(1)),
        },
        texts: quoted_texts(request.selectors.as_ref()),
        capacity: request
            .capacity
            .iter()
            .flat_map(|c| c.requests.iter().flatten())
            .map(|(name, quantity)| (name.clone(), quantity.0.clone()))
            .collect(),
        admin: request.admin_access.unwrap_or(false),
    }
}

fn requests(devices: Option<&DeviceClaim>) -> Vec<RequestAsk> {
    let requests = devices
        .and_then(|d| d.requests.as_ref())
        .into_iter()
        .flatten();
    requests
        .map(|request| {
            // An alternative is read as the exact request it would be.
            let alternatives = request.first_available.iter().flatten().map(|s| {
                device_ask(&ExactDeviceRequest {
                    device_class_name: s.device_class_name.clone(),
                    allocation_mode: s.allocation_mode.clone(),
                    count: s.count,
                    selectors: s.selectors.clone(),
                    capacity: s.capacity.clone(),
                    ..ExactDeviceRequest::default()
                })
            });
            RequestAsk {
                name: request.name.clone(),
                ways: request
                    .exactly
                    .iter()
                    .map(device_ask)
                    .chain(alternatives)
                    .collect(),
            }
        })
        .collect()
}

/// `namespace/name` (neither holds a `/`), shared by the copies of the map each view keeps.
type Named = Arc<str>;

fn named(namespace: &str, name: &str) -> Named {
    format!("{namespace}/{name}").into()
}

/// The claims and claim templates of a cluster, by namespace and name, read for what they ask.
/// Each view holds a copy: the entries are shared, so a copy costs the table, not the claims.
#[derive(Clone, Debug, Default)]
pub struct ClaimAsks {
    claims: FxHashMap<Named, Arc<ClaimAsk>>,
    templates: FxHashMap<Named, Arc<ClaimAsk>>,
    /// The GPUs claims may share, each consuming part of what it offers: what a request for
    /// part of a device's capacity may be given.
    shareable: Arc<Vec<ShareableGpu>>,
    /// The GPU drivers publishing devices on each node: where a claim's request can be met.
    drivers: Arc<BTreeMap<String, BTreeSet<String>>>,
}

/// What `claim` asks for, under its namespace and name.
fn claim_ask(claim: &ResourceClaim) -> (Named, Arc<ClaimAsk>) {
    let meta = &claim.metadata;
    let key = named(
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    );
    let reserved_for = claim
        .status
        .iter()
        .flat_map(|s| s.reserved_for.iter().flatten())
        .filter(|r| r.resource == "pods")
        .map(|r| r.uid.clone())
        .collect();
    let ask = ClaimAsk {
        describes: format!("ResourceClaim {key}"),
        requests: requests(claim.spec.devices.as_ref()),
        reserved_for,
    };
    (key, Arc::new(ask))
}

/// What claims made from `template` will ask for, under its namespace and name.
fn template_ask(template: &ResourceClaimTemplate) -> (Named, Arc<ClaimAsk>) {
    let meta = &template.metadata;
    let key = named(
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    );
    let ask = ClaimAsk {
        describes: format!("ResourceClaimTemplate {key}"),
        requests: requests(template.spec.spec.devices.as_ref()),
        reserved_for: Vec::new(),
    };
    (key, Arc::new(ask))
}

impl ClaimAsks {
    /// Reads what `claims` and `templates` ask for.
    pub fn new<'o>(
        claims: impl IntoIterator<Item = &'o ResourceClaim>,
        templates: impl IntoIterator<Item = &'o ResourceClaimTemplate>,
    ) -> Self {
        ClaimAsks {
            claims: claims.into_iter().map(claim_ask).collect(),
            templates: templates.into_iter().map(template_ask).collect(),
            shareable: Arc::default(),
            drivers: Arc::default(),
        }
    }

    /// Reads again which GPUs of `slices` claims may share, and which drivers publish devices
    /// on each node.
    pub fn set_slices<'o>(&mut self, slices: impl IntoIterator<Item = &'o ResourceSlice>) {
        let index = DeviceIndex::from_slices(slices);
        self.shareable = Arc::new(index.shareable_gpus());
        self.drivers = Arc::new(index.drivers_by_node());
    }

    /// Whether `driver` publishes devices on `node`.
    pub fn publishes(&self, node: &str, driver: &str) -> bool {
        self.drivers
            .get(node)
            .is_some_and(|drivers| drivers.contains(driver))
    }

    /// The GPUs claims may share, each consuming part of what it offers.
    pub fn shareable(&self) -> &[ShareableGpu] {
        &self.shareable
    }

    /// Reads again the claim of `namespace` and `name`: `claim` as it is now, `None` once gone.
    pub fn set_claim(&mut self, namespace: &str, name: &str, claim: Option<&ResourceClaim>) {
        self.claims.remove(&*named(namespace, name));
        self.claims.extend(claim.map(claim_ask));
    }

    /// Reads again the claim template of `namespace` and `name`.
    pub fn set_template(
        &mut self,
        namespace: &str,
        name: &str,
        template: Option<&ResourceClaimTemplate>,
    ) {
        self.templates.remove(&*named(namespace, name));
        self.templates.extend(template.map(template_ask));
    }

    /// What a pod's claim entry in `namespace` asks for, or, when the object it names is not
    /// known, what that object is (`ResourceClaimTemplate team-a/eight-h100`).
    pub fn of(&self, namespace: &str, claim: &PodResourceClaim) -> Result<&ClaimAsk, String> {
        let (kind, name, known) = match (
            &claim.resource_claim_name,
            &claim.resource_claim_template_name,
        ) {
            (Some(name), _) => ("ResourceClaim", name, &self.claims),
            (None, Some(name)) => ("ResourceClaimTemplate", name, &self.templates),
            (None, None) => {
                return Err(format!(
                    "claim {} (it names neither a ResourceClaim nor a template)",
                    claim.name
                ));
            }
        };
        known
            .get(&*named(namespace, name))
            .map(|ask| &**ask)
            .ok_or_else(|| format!("{kind} {namespace}/{name}"))
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn template(yaml: &str) -> ResourceClaimTemplate {
        serde_yaml::from_str(yaml).expect("a template")
    }

    #[test]
    fn a_template_is_read_for_its_class_count_alternatives_and_selector_texts() {
        let template = template(
            r#"
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: big, namespace: team-a}
spec:
  spec:
    devices:
      requests:
        - name: gpus
          exactly:
            deviceClassName: gpu.nvidia.com
            count: 8
            selectors:
              - cel: {expression: "device.attributes[\"gpu.nvidia.com\"].productName == 'NVIDIA H200'"}
        - name: slice
          firstAvailable:
            - {name: small, deviceClassName: mig.nvidia.com, selectors: [{cel: {expression: "device.attributes['gpu.nvidia.com'].profile == \"1g.10gb\""}}]}
            - {name: whole, deviceClassName: gpu.nvidia.com, allocationMode: All}
        - name: watch
          exactly: {deviceClassName: gpu.nvidia.com, adminAccess: true}
        - name: nic
          exactly:
            deviceClassName: rdma.example.com
            capacity: {requests: {bandwidth: 10G}}
"#,
        );
        let asks = ClaimAsks::new([], [&template]);
        let claim = PodResourceClaim {
            name: "gpu".into(),
            resource_claim_template_name: Some("big".into()),
            ..Default::default()
        };
        let ask = asks.of("team-a", &claim).expect("known");
        assert_eq!(ask.describes, "ResourceClaimTemplate team-a/big");
        let ways: Vec<&DeviceAsk> = ask.requests.iter().flat_map(|r| &r.ways).collect();
        let way = |class_name: &str, count, texts: &[&str], shares: bool, admin| DeviceAsk {
            class_name: class_name.to_string(),
            class: DeviceClass::of(class_name),
            count,
            texts: texts.iter().map(|t| t.to_string()).collect(),
            capacity: if shares {
                [("bandwidth".to_string(), "10G".to_string())].into()
            } else {
                BTreeMap::new()
            },
            admin,
        };
        use DeviceCount::*;
        let gpu = "gpu.nvidia.com";
        assert_eq!(
            ways,
            [
                &way(gpu, Exactly(8), &[gpu, "NVIDIA H200"], false, false),
                &way(
                    "mig.nvidia.com",
                    Exactly(1),
                    &[gpu, "1g.10gb"],
                    false,
                    false
                ),
                &way(gpu, All, &[], false, false),
                &way(gpu, Exactly(1), &[], false, true),
                &way("rdma.example.com", Exactly(1), &[], true, false),
            ]
        );
        assert_eq!(
            ways.iter().map(|w| w.class).collect::<Vec<_>>(),
            [
                DeviceClass::Gpu,
                DeviceClass::Mig,
                DeviceClass::Gpu,
                DeviceClass::Gpu,
                DeviceClass::Unknown
            ]
        );
        assert_eq!(
            ask.requests
                .iter()
                .map(|r| r.ways.len())
                .collect::<Vec<_>>(),
            [1, 2, 1, 1]
        );
        // In another namespace, or a claim rather than a template: not known, and named.
        assert_eq!(
            asks.of("team-b", &claim),
            Err("ResourceClaimTemplate team-b/big".to_string())
        );
        let by_name = PodResourceClaim {
            name: "gpu".into(),
            resource_claim_name: Some("big".into()),
            ..Default::default()
        };
        assert_eq!(
            asks.of("team-a", &by_name),
            Err("ResourceClaim team-a/big".to_string())
        );
    }
}
