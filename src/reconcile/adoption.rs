//! Adoption: resources made before the object (the seed as `sst deploy` left it, say)
//! handed to it without a new endpoint or a new identity pool. The spec names them
//! (`spec.adopt`); the platform marks each with two tags, which the operator's IAM policy
//! never lets it put on anything not already this cluster's:
//! `authedapi.dev/cluster=<cluster id>` (what lets the operator change it at all) and
//! `authedapi.dev/adopt-by=<namespace>/<name>` (which object may take it). Without both,
//! nothing is adopted, read further or changed; a resource of another cluster never is.

use std::collections::BTreeMap;

use super::Error;
use super::driver::Driver;
use crate::aws::apigateway::HttpApi;
use crate::aws::cognito::IdentityPool;
use crate::plan::{TAG_CLUSTER, TAG_OWNER};

/// The platform's mark: the object (`<namespace>/<name>`) a resource is handed to.
pub const TAG_ADOPT_BY: &str = "authedapi.dev/adopt-by";

/// Whether `tags` hand a resource to the object whose own tags are `ours`.
pub fn marked_for(tags: &BTreeMap<String, String>, ours: &BTreeMap<String, String>) -> bool {
    refusal(tags, ours).is_none()
}

/// Why `tags` do not hand a resource to the object whose own tags are `ours`: None when
/// they do.
pub fn refusal(tags: &BTreeMap<String, String>, ours: &BTreeMap<String, String>) -> Option<String> {
    let (cluster, owner) = (&ours[TAG_CLUSTER], &ours[TAG_OWNER]);
    match (tags.get(TAG_CLUSTER), tags.get(TAG_ADOPT_BY)) {
        (Some(c), _) if c != cluster => Some(format!(
            "it is tagged as another cluster's ({TAG_CLUSTER}={c}, this one is {cluster}): \
             never adopted"
        )),
        (c, by) if c.is_none() || by != Some(owner) => Some(format!(
            "it lacks the platform's mark that hands it to this object: the tags \
             {TAG_CLUSTER}={cluster} and {TAG_ADOPT_BY}={owner}, which only someone with \
             more rights than the operator can set; nothing was changed"
        )),
        _ => None,
    }
}

/// The HTTP API spec.adopt names, if it is still to be adopted (no API in status yet).
pub fn api_to_adopt(d: &Driver<'_>) -> Option<String> {
    let id = d.obj.spec.adopt.as_ref()?.api_id.clone()?;
    d.status.api_id.is_none().then_some(id)
}

/// The identity pool spec.adopt names, if it is still to be adopted.
pub fn pool_to_adopt(d: &Driver<'_>) -> Option<String> {
    let id = d.obj.spec.adopt.as_ref()?.identity_pool_id.clone()?;
    d.status.identity_pool_id.is_none().then_some(id)
}

/// The API `id`, if the platform handed it to this object; refused otherwise.
pub async fn api(d: &Driver<'_>, id: &str) -> Result<HttpApi, Error> {
    let what = format!("the HTTP API {id} in spec.adopt");
    match d.aws.apigateway.get_api(id).await? {
        Some(api) => d.adopt(what, &api.tags).map(|()| api),
        None => Err(missing(what)),
    }
}

/// The identity pool `id`, if the platform handed it to this object; refused otherwise.
pub async fn pool(d: &Driver<'_>, id: &str) -> Result<IdentityPool, Error> {
    let what = format!("the identity pool {id} in spec.adopt");
    match d.aws.cognito.describe_identity_pool(id).await? {
        Some(pool) => d.adopt(what, &pool.tags).map(|()| pool),
        None => Err(missing(what)),
    }
}

/// Before anything is written: every resource still to adopt is handed over, or the sync
/// stops here with nothing changed.
pub async fn check(d: &Driver<'_>) -> Result<(), Error> {
    if let Some(id) = api_to_adopt(d) {
        api(d, &id).await?;
    }
    if let Some(id) = pool_to_adopt(d) {
        pool(d, &id).await?;
    }
    Ok(())
}

fn missing(what: String) -> Error {
    Error::NotAdoptable {
        what,
        why: "it does not exist".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ours() -> BTreeMap<String, String> {
        tags(&[(TAG_CLUSTER, "prod"), (TAG_OWNER, "team-a/api")])
    }

    #[test]
    fn both_tags_hand_it_over() {
        let marked = tags(&[
            (TAG_CLUSTER, "prod"),
            (TAG_ADOPT_BY, "team-a/api"),
            ("sst:app", "api-auth-auth0"),
        ]);
        assert_eq!(refusal(&marked, &ours()), None);
        assert!(marked_for(&marked, &ours()));
    }

    #[test]
    fn no_mark_or_a_mark_for_another_object_is_refused() {
        let none = tags(&[("sst:app", "api-auth-auth0")]);
        assert!(
            refusal(&none, &ours())
                .unwrap()
                .contains("adopt-by=team-a/api")
        );
        let other = tags(&[(TAG_CLUSTER, "prod"), (TAG_ADOPT_BY, "team-b/api")]);
        assert!(!marked_for(&other, &ours()));
        let unclustered = tags(&[(TAG_ADOPT_BY, "team-a/api")]);
        assert!(!marked_for(&unclustered, &ours()));
    }

    #[test]
    fn another_clusters_resource_is_never_adopted() {
        let theirs = tags(&[(TAG_CLUSTER, "staging"), (TAG_ADOPT_BY, "team-a/api")]);
        assert!(
            refusal(&theirs, &ours())
                .unwrap()
                .contains("another cluster's")
        );
    }
}
