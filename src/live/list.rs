//! One complete read of the cluster (a list of each kind), for commands that need the cluster as
//! it is now rather than a running watch: `tollgate report` and `tollgate quota` without
//! `--demo` or `--snapshot`.

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceClaimTemplate, ResourceSlice};
use kube::api::ListParams;
use kube::{Api, Client};
use serde::de::DeserializeOwned;

use super::stores::Strip;
use crate::allocation::ClusterObjects;

async fn list<K>(client: &Client, optional: bool) -> Result<Vec<K>, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + Strip + Clone + DeserializeOwned + std::fmt::Debug,
{
    let api = Api::<K>::all(client.clone());
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = match api.list(&params).await {
            Ok(page) => page,
            Err(kube::Error::Api(status)) if optional && status.code == 404 => {
                tracing::warn!(kind = %K::kind(&()), "the API server does not serve it; DRA claims are not read");
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        items.extend(page.items.into_iter().map(|mut item| {
            item.strip();
            item
        }));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
}

/// Lists pods, nodes, namespaces and (where served) DRA claims, slices and claim templates.
pub async fn list_cluster(client: &Client) -> Result<ClusterObjects, kube::Error> {
    Ok(ClusterObjects {
        pods: list::<Pod>(client, false).await?,
        nodes: list::<Node>(client, false).await?,
        namespaces: list::<Namespace>(client, false).await?,
        claims: list::<ResourceClaim>(client, true).await?,
        slices: list::<ResourceSlice>(client, true).await?,
        templates: list::<ResourceClaimTemplate>(client, true).await?,
    })
}
