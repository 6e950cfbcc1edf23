//! Adoption (spec.adopt): an API and an identity pool made before the object, handed to it
//! by the platform's mark, are taken over (same ids, the routes moved onto ours in place);
//! without the mark, or marked for another cluster, nothing is adopted or changed.

use super::*;
use crate::api::Adopt;
use crate::aws::apigateway::{IntegrationTarget, RouteAuth};
use crate::aws::cognito::IdentityPool;
use crate::plan::TAG_CLUSTER;
use crate::reconcile::adoption::TAG_ADOPT_BY;

/// The seed as `sst deploy` left it: an API whose GET /private and GET /public reach the
/// functions, and an identity pool, tagged `extra` on top of SST's tags.
async fn deployed_by_sst(rig: &Rig, extra: &[(&str, &str)]) -> (String, String) {
    let mut tags: BTreeMap<String, String> = [("sst:app", "api-auth-auth0"), ("sst:stage", "dev")]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let aws = rig.aws.clients();
    let api = aws
        .apigateway
        .create_api("dev-api-auth-auth0-Api", &tags)
        .await
        .unwrap();
    for (key, function, auth) in [
        ("GET /private", PRIVATE_FN, RouteAuth::Iam),
        ("GET /public", PUBLIC_FN, RouteAuth::None),
    ] {
        let target = IntegrationTarget::Lambda {
            function_arn: function.into(),
            payload_format_version: "2.0".into(),
        };
        let integration = aws
            .apigateway
            .create_integration(&api.id, &target)
            .await
            .unwrap();
        aws.apigateway
            .create_route(&api.id, key, &integration, &auth)
            .await
            .unwrap();
    }
    tags.insert("sst:construct".into(), "Auth".into());
    let pool = aws
        .cognito
        .create_identity_pool(&IdentityPool {
            id: String::new(),
            name: "dev-api-auth-auth0-IdentityPool".into(),
            allow_unauthenticated: false,
            oidc_provider_arns: Vec::new(),
            tags,
        })
        .await
        .unwrap();
    rig.clear_counts();
    (api.id, pool.id)
}

fn adopting(api_id: &str, pool_id: &str) -> AuthedApi {
    let mut obj = seed();
    obj.spec.adopt = Some(Adopt {
        api_id: Some(api_id.into()),
        identity_pool_id: Some(pool_id.into()),
    });
    obj
}

const MARK: [(&str, &str); 2] = [(TAG_CLUSTER, "test"), (TAG_ADOPT_BY, "team/seed")];

#[tokio::test]
async fn a_marked_api_and_pool_are_adopted_with_their_ids() {
    let rig = Rig::new();
    let (api_id, pool_id) = deployed_by_sst(&rig, &MARK).await;
    let mut obj = adopting(&api_id, &pool_id);
    rig.reconcile(&mut obj).await.unwrap();

    let status = obj.status.unwrap();
    assert!(
        status::is_ready(&status.conditions, 1),
        "{:?}",
        status.conditions
    );
    assert_eq!(status.api_id.as_deref(), Some(api_id.as_str()));
    assert_eq!(status.identity_pool_id.as_deref(), Some(pool_id.as_str()));
    let writes = rig.writes();
    assert!(!writes.contains_key("CreateApi"), "{writes:?}");
    assert!(!writes.contains_key("CreateIdentityPool"), "{writes:?}");
    // SST's GET /private and GET /public are kept as they are; only the seed's two
    // other routes are new.
    assert_eq!(writes.get("CreateRoute"), Some(&2), "{writes:?}");
    assert!(!writes.contains_key("UpdateRoute"), "{writes:?}");
    let s = rig.aws.state();
    assert_eq!((s.apis.len(), s.pools.len()), (1, 1));
    // The pool now carries this object's tags too (the API's are reported, not set).
    assert_eq!(s.pools[&pool_id].tags["authedapi.dev/uid"], "uid-1");
}

#[tokio::test]
async fn adopted_resources_are_the_objects_from_then_on() {
    let rig = Rig::new();
    let (api_id, pool_id) = deployed_by_sst(&rig, &MARK).await;
    let mut obj = adopting(&api_id, &pool_id);
    rig.reconcile(&mut obj).await.unwrap();
    rig.clear_counts();
    rig.reconcile(&mut obj).await.unwrap();
    let writes = rig.writes();
    assert!(writes.is_empty(), "{writes:?}");
    rig.delete(&obj).await.unwrap();
    let s = rig.aws.state();
    assert!(s.apis.is_empty() && s.pools.is_empty());
}

#[tokio::test]
async fn without_the_platforms_mark_nothing_is_adopted_or_changed() {
    for (mark, says) in [
        (&[][..], "adopt-by=team/seed"),
        (
            &[(TAG_CLUSTER, "test"), (TAG_ADOPT_BY, "other/seed")][..],
            "adopt-by=team/seed",
        ),
        (
            &[(TAG_CLUSTER, "elsewhere"), (TAG_ADOPT_BY, "team/seed")][..],
            "another cluster's",
        ),
    ] {
        let rig = Rig::new();
        let (api_id, pool_id) = deployed_by_sst(&rig, mark).await;
        let mut obj = adopting(&api_id, &pool_id);
        let error = rig.reconcile(&mut obj).await.expect_err("refused");
        assert_eq!(error.reason(), "AdoptionRefused");
        assert!(error.to_string().contains(says), "{error}");
        assert!(error.to_string().contains(&api_id), "{error}");
        let writes = rig.writes();
        assert!(writes.is_empty(), "{writes:?}");
        assert!(
            !rig.aws.state().apis[&api_id]
                .api
                .tags
                .contains_key("authedapi.dev/uid")
        );
        let status = obj.status.unwrap();
        assert_eq!(status.api_id, None);
        assert!(
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Stalled" && c.status == "True"),
            "{:?}",
            status.conditions
        );
    }
}

#[tokio::test]
async fn observe_only_lists_what_adopting_would_change_first() {
    let rig = Rig::new();
    let (api_id, pool_id) = deployed_by_sst(&rig, &MARK).await;
    let mut obj = adopting(&api_id, &pool_id);
    obj.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(OBSERVE_ONLY.into(), "true".into());
    rig.reconcile(&mut obj).await.unwrap();
    let writes = rig.writes();
    assert!(writes.is_empty(), "{writes:?}");
    let status = obj.status.unwrap();
    assert_eq!(status.api_id, None, "nothing recorded while observing");
    let planned = status.planned_changes.join("\n");
    assert!(!planned.contains("CreateApi"), "{planned}");
    assert!(!planned.contains("CreateIdentityPool"), "{planned}");
    assert!(planned.contains("UpdateIdentityPool"), "{planned}");
    assert!(planned.contains("CreateRoute GET /reports"), "{planned}");
    assert!(!planned.contains("CreateRoute GET /private"), "{planned}");
}
