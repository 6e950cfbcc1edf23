//! Creating the seed: one of each resource, Ready, and nothing more on a second look.

use super::*;

#[tokio::test]
async fn the_seed_is_created_once_of_each_and_ends_ready() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.reconcile(&mut obj).await.unwrap();
    let status = obj.status.clone().unwrap();
    assert!(status::is_ready(&status.conditions, 1), "{status:?}");
    let s = rig.aws.state();
    assert_eq!(s.apis.len(), 1);
    let api = s.apis.values().next().unwrap();
    assert_eq!(api.integrations.len(), 3, "two functions and one URL");
    assert_eq!(api.routes.len(), 4);
    assert_eq!(api.authorizers.len(), 1);
    assert!(api.stage.as_ref().is_some_and(|st| st.auto_deploy));
    assert_eq!(s.pools.len(), 1);
    assert_eq!(s.roles.len(), 2, "the default role and the admins rule's");
    // With access rules the default role may call only the routes named for it: none here.
    assert_eq!(
        s.role_policies.values().map(BTreeMap::len).sum::<usize>(),
        1
    );
    assert_eq!(s.providers.len(), 1);
    assert!(
        [PRIVATE_FN, PUBLIC_FN]
            .iter()
            .all(|f| s.functions[*f].len() == 1),
        "{:?}",
        s.functions
    );
    let mapping = s
        .pool_roles
        .values()
        .next()
        .unwrap()
        .mapping
        .as_ref()
        .unwrap();
    assert_eq!(mapping.rules.len(), 1);
    drop(s);
    assert_eq!(status.api_id.as_deref(), Some(rig.api_id().as_str()));
    assert!(status.pending_creates.is_empty());
    assert_eq!(status.lambda_permissions.len(), 2);
    assert_eq!(status.access_roles.len(), 1);
    assert_eq!(status.routes.len(), 4);
    assert!(status.routes.iter().all(|r| r.route_id.is_some()));
    let outputs = rig.cluster.config_maps.lock().unwrap()["seed-outputs"].clone();
    assert_eq!(
        outputs.data.unwrap()["identityPoolId"],
        status.identity_pool_id.unwrap()
    );
    let events = rig.cluster.events();
    assert!(
        events
            .iter()
            .any(|e| e.reason == "Created" && e.action == "CreateApi")
    );
    assert!(events.iter().any(|e| e.reason == "Ready"));
    assert!(events.iter().all(|e| !e.warning), "{events:?}");
}

#[tokio::test]
async fn a_new_api_gets_its_cors_and_endpoint_settings_in_the_same_reconcile() {
    let rig = Rig::new();
    let mut obj = seed();
    obj.spec.disable_execute_api_endpoint = true;
    rig.reconcile(&mut obj).await.unwrap();
    let id = rig.api_id();
    assert!(
        rig.aws
            .state()
            .api(&id)
            .unwrap()
            .api
            .disable_execute_api_endpoint
    );
    assert_eq!(rig.writes().get("UpdateApi"), Some(&1));
}

#[tokio::test]
async fn a_second_reconcile_of_an_unchanged_object_writes_nothing() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.writes(), BTreeMap::new());
    assert!(
        rig.cluster.events().is_empty(),
        "{:?}",
        rig.cluster.events()
    );
}

#[tokio::test]
async fn the_status_writes_of_a_first_reconcile_are_counted_for_the_crash_tests() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.reconcile(&mut obj).await.unwrap();
    let saved = rig.cluster.statuses.lock().unwrap().clone();
    // Reconciling, the account, API pending, API id, permission intent, pool pending, pool
    // id, access role intent, the outcome.
    assert_eq!(saved.len(), 9, "{saved:#?}");
    assert_eq!(saved[1].account_id.as_deref(), Some(ACCOUNT));
    assert!(saved[1].oidc_provider_arn.is_none() && saved[1].api_id.is_none());
    assert_eq!(saved[2].pending_creates, vec!["HttpApi".to_string()]);
    assert!(saved[3].api_id.is_some() && saved[3].pending_creates.is_empty());
    assert_eq!(saved[4].lambda_permissions.len(), 2);
    assert_eq!(saved[5].pending_creates, vec!["IdentityPool".to_string()]);
    assert!(saved[6].identity_pool_id.is_some());
    assert_eq!(saved[7].access_roles.len(), 1);
    assert!(metric(&rig.ctx, "authedapi_status_writes_total") >= 9.0);
}

fn metric(ctx: &Context, name: &str) -> f64 {
    ctx.metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_new_object_is_created_without_reading_what_cannot_exist_yet() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.reconcile(&mut obj).await.unwrap();
    let reads = rig.aws.state().reads.clone();
    for inside_something_new in [
        "GetIntegrations",
        "GetAuthorizers",
        "GetRoutes",
        "GetStage",
        "GetIdentityPoolRoles",
        "GetRolePolicy",
    ] {
        assert!(!reads.contains_key(inside_something_new), "{reads:?}");
    }
    // The next reconcile looks at everything.
    rig.clear_counts();
    rig.reconcile(&mut obj).await.unwrap();
    let reads = rig.aws.state().reads.clone();
    assert_eq!(reads.get("GetRoutes"), Some(&1), "{reads:?}");
    assert_eq!(
        reads.get("GetRolePolicy"),
        Some(&2),
        "both roles: {reads:?}"
    );
}
