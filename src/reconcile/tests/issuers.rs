//! Any OIDC issuer (spec.oidc, with a path): the provider, the pool, the role mapping and the
//! JWT authorizer all follow its host and path; two paths on one host are two providers.

use super::*;

/// The seed federating `issuer` through spec.oidc instead of spec.auth0.
fn with_issuer(name: &str, uid: &str, issuer: &str) -> AuthedApi {
    let mut obj = seed();
    obj.metadata.name = Some(name.into());
    obj.metadata.uid = Some(uid.into());
    obj.spec.auth0 = None;
    obj.spec.oidc = Some(crate::api::Oidc {
        issuer: issuer.into(),
        client_id: "okta-client".into(),
        audience: None,
    });
    obj.spec.outputs = Some(crate::api::Outputs {
        config_map_name: format!("{name}-outputs"),
    });
    obj
}

/// A rig whose operator allows `issuers` (its --allowed-issuers).
fn allowing(issuers: &[&str]) -> Rig {
    let mut rig = Rig::new();
    let ctx = Arc::get_mut(&mut rig.ctx).expect("no one else holds the context yet");
    ctx.defaults.allowed_issuers = issuers.iter().map(|s| s.to_string()).collect();
    rig
}

#[tokio::test]
async fn an_okta_issuer_is_federated_by_host_and_path_everywhere() {
    let rig = allowing(&["*.okta.com/oauth2/*"]);
    let mut obj = with_issuer("okta", "uid-okta", "https://acme.okta.com/oauth2/default");
    rig.reconcile(&mut obj).await.unwrap();
    let name = "acme.okta.com/oauth2/default";
    let arn = format!("arn:aws:iam::123456789012:oidc-provider/{name}");
    let s = rig.aws.state();
    let provider = &s.providers[&arn];
    assert_eq!(provider.url, name);
    assert_eq!(provider.client_ids, vec!["okta-client".to_string()]);
    let pool = s.pools.values().next().unwrap();
    assert_eq!(pool.oidc_provider_arns, vec![arn.clone()]);
    let roles = s.pool_roles.values().next().unwrap();
    assert_eq!(
        roles.mapping.as_ref().unwrap().provider,
        name,
        "the role mapping is keyed by the provider's name"
    );
    let api = s.apis.values().next().unwrap();
    let jwt = api.authorizers[0].as_jwt().unwrap();
    assert_eq!(
        jwt.issuer, "https://acme.okta.com/oauth2/default",
        "the JWT authorizer takes the issuer as given: Okta's has no trailing slash"
    );
    assert_eq!(jwt.audience, vec!["okta-client".to_string()]);
    drop(s);
    let status = obj.status.unwrap();
    assert_eq!(status.oidc_provider_arn.as_deref(), Some(arn.as_str()));
    assert!(status::is_ready(&status.conditions, 1));
    let outputs = rig.cluster.config_maps.lock().unwrap()["okta-outputs"].clone();
    let data = outputs.data.unwrap();
    assert_eq!(data["issuer"], "https://acme.okta.com/oauth2/default");
    assert_eq!(data["clientId"], "okta-client");
    assert!(!data.contains_key("auth0Domain"));
}

#[tokio::test]
async fn two_paths_on_one_host_are_two_providers_released_apart() {
    let rig = allowing(&["login.example.com/realms/*"]);
    let mut a = with_issuer("a", "uid-a", "https://login.example.com/realms/a");
    let mut b = with_issuer("b", "uid-b", "https://login.example.com/realms/b");
    rig.reconcile(&mut a).await.unwrap();
    rig.reconcile(&mut b).await.unwrap();
    let arns: Vec<String> = rig.aws.state().providers.keys().cloned().collect();
    assert_eq!(
        arns,
        vec![
            "arn:aws:iam::123456789012:oidc-provider/login.example.com/realms/a".to_string(),
            "arn:aws:iam::123456789012:oidc-provider/login.example.com/realms/b".to_string(),
        ]
    );
    // The same client id on the other realm does not keep this realm's provider.
    rig.delete(&a).await.unwrap();
    let arns: Vec<String> = rig.aws.state().providers.keys().cloned().collect();
    assert_eq!(
        arns,
        vec!["arn:aws:iam::123456789012:oidc-provider/login.example.com/realms/b".to_string()]
    );
}

#[tokio::test]
async fn an_issuer_the_namespace_may_not_use_stalls_with_not_allowed() {
    // The operator's default allows Auth0 domains only: a host pattern, no paths.
    let rig = Rig::new();
    let mut obj = with_issuer("k", "uid-k", "https://tenant.us.auth0.com/realms/x");
    assert!(rig.reconcile(&mut obj).await.is_err());
    let stalled = obj
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "NotAllowed")
    );
    assert!(
        stalled
            .message
            .contains("the issuer tenant.us.auth0.com/realms/x is not allowed"),
        "{}",
        stalled.message
    );
    assert_eq!(rig.aws.state().writes_total(), 0);
}

#[tokio::test]
async fn moving_from_auth0_to_another_issuer_releases_the_auth0_provider() {
    let rig = allowing(&["*.auth0.com", "*.okta.com/oauth2/*"]);
    let mut obj = seed();
    rig.ready(&mut obj).await;
    obj.spec.auth0 = None;
    obj.spec.oidc = Some(crate::api::Oidc {
        issuer: "https://acme.okta.com/oauth2/default".into(),
        client_id: "okta-client".into(),
        audience: None,
    });
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    let arns: Vec<String> = rig.aws.state().providers.keys().cloned().collect();
    assert_eq!(
        arns,
        vec!["arn:aws:iam::123456789012:oidc-provider/acme.okta.com/oauth2/default".to_string()]
    );
    let pool = rig.aws.state().pools.values().next().cloned().unwrap();
    assert_eq!(pool.oidc_provider_arns, arns);
}

/// A tenant and its object applied together: the cache has not seen the tenant when the
/// object comes, so by the cache the issuer is not allowed. The tenants are read afresh
/// before stalling, and the object goes Ready, never Stalled. (Before, it stalled
/// NotAllowed until the cache caught up: kstatus reads that as Failed.)
#[tokio::test]
async fn a_tenant_the_cache_has_not_seen_yet_is_read_before_stalling() {
    let rig = Rig::new();
    *rig.cluster.tenants.lock().unwrap() = vec![crate::tenant::AuthedApiTenant {
        metadata: kube::api::ObjectMeta {
            name: Some("team".into()),
            ..Default::default()
        },
        spec: crate::tenant::AuthedApiTenantSpec {
            namespaces: vec!["team".into()],
            namespace_selector: None,
            allowed_functions: vec!["arn:aws:lambda:*:*:function:*".into()],
            allowed_private_targets: Vec::new(),
            allowed_issuers: Some(vec!["login.example.com/realms/*".into()]),
            aws: None,
        },
    }];
    let mut obj = with_issuer("k", "uid-k", "https://login.example.com/realms/a");
    rig.reconcile(&mut obj).await.unwrap();
    let conditions = obj.status.unwrap().conditions;
    assert!(status::is_ready(&conditions, 1));
    assert!(
        rig.cluster
            .statuses
            .lock()
            .unwrap()
            .iter()
            .all(|s| !s.conditions.iter().any(|c| c.type_ == "Stalled")),
        "never Stalled"
    );
}
