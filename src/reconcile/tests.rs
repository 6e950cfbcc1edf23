//! The fast layer: whole reconciles in-process, against the in-memory AWS
//! ([`crate::aws::fake`]) and an in-memory [`Cluster`]. The `kube::Client` in the context
//! is a tower-test mock nobody answers: reconcile logic reaches Kubernetes only through
//! `Cluster` (the finalizer, which needs the real client, is the moto suite's to test).
//! Each test is one branch of the driver or of a kind, named as the behaviour it shows.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::events::EventType;
use kube::runtime::reflector;
use kube::runtime::watcher;
use serde_json::json;

use super::cluster::Cluster;
use super::context::{AwsProvider, Settings};
use super::events::{Action, Reason};
use super::*;
use crate::api::AuthedApi;
use crate::aws::ErrorKind;
use crate::aws::fake::FakeAws;
use crate::aws::iam::Role;
use crate::metrics::Metrics;
use crate::tenant::Defaults;

const ACCOUNT: &str = "123456789012";
const PRIVATE_FN: &str = "arn:aws:lambda:us-east-1:123456789012:function:private";
const PUBLIC_FN: &str = "arn:aws:lambda:us-east-1:123456789012:function:public";

/// One event as published.
#[derive(Clone, Debug)]
struct Published {
    warning: bool,
    reason: String,
    action: String,
    note: String,
}

/// Kubernetes as the reconcile sees it: the status it saves, the events it publishes,
/// ConfigMaps, namespace labels.
#[derive(Default)]
struct FakeCluster {
    statuses: Mutex<Vec<AuthedApiStatus>>,
    events: Mutex<Vec<Published>>,
    config_maps: Mutex<BTreeMap<String, ConfigMap>>,
}

impl FakeCluster {
    fn last_status(&self) -> AuthedApiStatus {
        self.statuses
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }

    fn events(&self) -> Vec<Published> {
        self.events.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Cluster for FakeCluster {
    async fn save_status(
        &self,
        _: &str,
        _: &str,
        status: &AuthedApiStatus,
    ) -> Result<(), kube::Error> {
        self.statuses.lock().unwrap().push(status.clone());
        Ok(())
    }

    async fn publish(
        &self,
        _: &AuthedApi,
        type_: EventType,
        reason: Reason,
        action: &Action,
        note: String,
    ) {
        self.events.lock().unwrap().push(Published {
            warning: type_ == EventType::Warning,
            reason: reason.as_str().to_owned(),
            action: action.to_string(),
            note,
        });
    }

    async fn config_map(&self, _: &str, name: &str) -> Result<Option<ConfigMap>, kube::Error> {
        Ok(self.config_maps.lock().unwrap().get(name).cloned())
    }

    async fn apply_config_map(&self, _: &str, config_map: &ConfigMap) -> Result<(), kube::Error> {
        let name = config_map.metadata.name.clone().unwrap_or_default();
        self.config_maps
            .lock()
            .unwrap()
            .insert(name, config_map.clone());
        Ok(())
    }

    async fn delete_config_map(&self, _: &str, name: &str) -> Result<(), kube::Error> {
        self.config_maps.lock().unwrap().remove(name);
        Ok(())
    }

    async fn namespace_labels(&self, _: &str) -> Result<BTreeMap<String, String>, kube::Error> {
        Ok(BTreeMap::new())
    }
}

/// A context over the fakes, and the fakes.
struct Rig {
    aws: FakeAws,
    cluster: Arc<FakeCluster>,
    ctx: Arc<Context>,
    objects: reflector::store::Writer<AuthedApi>,
}

impl Rig {
    fn new() -> Self {
        let aws = FakeAws::default();
        {
            let mut s = aws.state();
            s.functions.insert(PRIVATE_FN.into(), Vec::new());
            s.functions.insert(PUBLIC_FN.into(), Vec::new());
        }
        let cluster = Arc::new(FakeCluster::default());
        // Nobody answers this API server: a call through it fails the test.
        let (service, _nobody) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let client = kube::Client::new(service, "default");
        let (store, objects) = reflector::store();
        let (tenants, _) = reflector::store();
        let ctx = Context::new(
            client,
            cluster.clone(),
            AwsProvider::fixed(aws.clients(), ACCOUNT, Some("us-east-1")),
            Settings {
                cluster_id: "test".into(),
                resync: Duration::from_secs(600),
                permissions_boundary: "authedapi-boundary".into(),
                defaults: Defaults {
                    allowed_functions: vec!["arn:aws:lambda:*:123456789012:function:*".into()],
                    allowed_issuers: vec!["*.auth0.com".into()],
                },
            },
            Arc::new(Metrics::default()),
            store,
            tenants,
        );
        Self {
            aws,
            cluster,
            ctx: Arc::new(ctx),
            objects,
        }
    }

    /// One reconcile of `obj` as the controller would run it (after the finalizer), with
    /// the status it saved last put back on the object, as the next watch event would.
    async fn reconcile(&self, obj: &mut AuthedApi) -> Result<(), Error> {
        // Each reconcile here is a fresh look: no steady-state shortcut, no backoff.
        self.ctx.forget(obj.metadata.uid.as_deref().unwrap());
        let result = apply(obj, &self.ctx).await.map(drop);
        obj.status = Some(self.cluster.last_status());
        result
    }

    async fn delete(&self, obj: &AuthedApi) -> Result<(), Error> {
        cleanup(obj, &self.ctx).await.map(drop)
    }

    fn writes(&self) -> BTreeMap<&'static str, usize> {
        self.aws.state().writes.clone()
    }

    fn clear_counts(&self) {
        let mut s = self.aws.state();
        s.writes.clear();
        s.reads.clear();
    }

    /// Reconcile `obj` to Ready, then forget the calls it made.
    async fn ready(&self, obj: &mut AuthedApi) {
        self.reconcile(obj).await.expect("first reconcile");
        assert!(status::is_ready(
            &obj.status.as_ref().unwrap().conditions,
            1
        ));
        self.clear_counts();
        self.cluster.events.lock().unwrap().clear();
    }

    fn api_id(&self) -> String {
        self.aws
            .state()
            .apis
            .keys()
            .next()
            .cloned()
            .expect("an API")
    }
}

/// The seed: GET /private (IAM) and GET /public (none), plus a JWT route, an access rule
/// and outputs, so every kind has something to do.
fn seed() -> AuthedApi {
    let mut obj: AuthedApi = serde_json::from_value(json!({
        "apiVersion": "authedapi.dev/v1alpha1",
        "kind": "AuthedApi",
        "metadata": {"name": "seed", "namespace": "team", "uid": "uid-1", "generation": 1},
        "spec": {
            "stage": "dev",
            "region": "us-east-1",
            "auth0": {"domain": "https://tenant.us.auth0.com", "clientId": "client-1"},
            "defaultAuthorization": "iam",
            "routes": [
                {"route": "GET /private", "target": {"lambda": {"functionArn": PRIVATE_FN}}},
                {"route": "GET /public", "authorization": "none",
                 "target": {"lambda": {"functionArn": PUBLIC_FN}}},
                {"route": "GET /reports", "authorization": "jwt",
                 "target": {"http": {"url": "https://example.com/reports"}}},
                {"route": "GET /admin", "target": {"lambda": {"functionArn": PRIVATE_FN}}}
            ],
            "access": {"rules": [
                {"name": "admins", "claim": "email", "value": "admin@example.com",
                 "routes": ["GET /admin"]}
            ]},
            "outputs": {"configMapName": "seed-outputs"}
        }
    }))
    .expect("seed spec");
    obj.metadata.namespace = Some("team".into());
    obj
}

fn names(writes: &BTreeMap<&'static str, usize>) -> Vec<&'static str> {
    writes.keys().copied().collect()
}

// --- creation and steady state -------------------------------------------------------

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
        s.functions.values().all(|p| p.len() == 1),
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
    // Reconciling, API pending, API id, permission intent, pool pending, pool id, access
    // role intent, the outcome.
    assert_eq!(saved.len(), 8, "{saved:#?}");
    assert_eq!(saved[1].pending_creates, vec!["HttpApi".to_string()]);
    assert!(saved[2].api_id.is_some() && saved[2].pending_creates.is_empty());
    assert_eq!(saved[3].lambda_permissions.len(), 2);
    assert_eq!(saved[4].pending_creates, vec!["IdentityPool".to_string()]);
    assert!(saved[5].identity_pool_id.is_some());
    assert_eq!(saved[6].access_roles.len(), 1);
    assert!(metric(&rig.ctx, "authedapi_status_writes_total") >= 8.0);
}

fn metric(ctx: &Context, name: &str) -> f64 {
    ctx.metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_default()
}

// --- crash safety: pending creates -----------------------------------------------------

#[tokio::test]
async fn an_api_created_before_a_crash_is_found_by_name_and_uid_not_created_again() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    // As if the operator crashed right after CreateApi: the marker is set, the id lost.
    let status = obj.status.as_mut().unwrap();
    status.api_id = None;
    status.pending_creates = vec!["HttpApi".into()];
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.aws.state().apis.len(), 1);
    assert!(!rig.writes().contains_key("CreateApi"));
    let status = obj.status.unwrap();
    assert_eq!(status.api_id, Some(rig.api_id()));
    assert!(status.pending_creates.is_empty());
}

#[tokio::test]
async fn a_pool_created_before_a_crash_is_found_by_name_and_uid_not_created_again() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let status = obj.status.as_mut().unwrap();
    let id = status.identity_pool_id.take();
    status.pending_creates = vec!["IdentityPool".into()];
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.aws.state().pools.len(), 1);
    assert!(!rig.writes().contains_key("CreateIdentityPool"));
    assert_eq!(obj.status.unwrap().identity_pool_id, id);
}

#[tokio::test]
async fn a_same_named_api_without_our_tag_is_someone_elses_and_left_alone() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let id = rig.api_id();
    rig.aws.state().api(&id).unwrap().api.tags.clear();
    let status = obj.status.as_mut().unwrap();
    status.api_id = None;
    status.pending_creates = vec!["HttpApi".into()];
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(
        rig.aws.state().apis.len(),
        2,
        "ours is created beside theirs"
    );
    assert_ne!(obj.status.unwrap().api_id, Some(id));
}

#[tokio::test]
async fn without_a_pending_marker_a_lost_api_is_created_anew() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let id = rig.api_id();
    rig.aws.state().apis.remove(&id);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.writes().get("CreateApi"), Some(&1));
    assert_eq!(rig.writes().get("CreateRoute"), Some(&4));
}

// --- ownership ----------------------------------------------------------------------

#[tokio::test]
async fn an_api_in_status_not_tagged_as_ours_stalls_with_name_conflict() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let id = rig.api_id();
    rig.aws.state().api(&id).unwrap().api.tags.clear();
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "NameConflict");
    assert!(e.stalls());
    assert!(e.to_string().contains("left alone"), "{e}");
    assert_eq!(rig.writes(), BTreeMap::new());
    let status = obj.status.unwrap();
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.reason == "NameConflict")
    );
}

#[tokio::test]
async fn a_role_with_our_name_that_is_not_ours_stalls_and_is_never_touched() {
    let rig = Rig::new();
    let mut obj = seed();
    let plan_role = {
        rig.reconcile(&mut obj).await.unwrap();
        obj.status
            .as_ref()
            .unwrap()
            .authenticated_role_arn
            .clone()
            .unwrap()
    };
    let name = plan_role.rsplit('/').next().unwrap().to_owned();
    let theirs = Role {
        tags: BTreeMap::from([("team".into(), "other".into())]),
        ..rig.aws.state().roles[&name].clone()
    };
    rig.aws.state().roles.insert(name.clone(), theirs.clone());
    rig.clear_counts();
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "NameConflict");
    assert!(e.to_string().contains(&format!("IAM role {name}")), "{e}");
    assert_eq!(rig.aws.state().roles[&name], theirs);
    // Deleting the object leaves their role too.
    rig.delete(&obj).await.unwrap();
    assert_eq!(rig.aws.state().roles.get(&name), Some(&theirs));
}

#[tokio::test]
async fn an_outputs_config_map_we_do_not_own_stalls_with_name_conflict() {
    let rig = Rig::new();
    let foreign = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("seed-outputs".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("mine".into(), "yes".into())])),
        ..Default::default()
    };
    rig.cluster
        .config_maps
        .lock()
        .unwrap()
        .insert("seed-outputs".into(), foreign.clone());
    let mut obj = seed();
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "NameConflict");
    assert_eq!(
        rig.cluster.config_maps.lock().unwrap()["seed-outputs"],
        foreign
    );
}

// --- drift, per field ------------------------------------------------------------------

/// Change AWS behind the operator's back with `drift`, reconcile, expect exactly the
/// write `fix`.
async fn drift_is_corrected(drift: impl FnOnce(&mut crate::aws::fake::State, &str), fix: &[&str]) {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let api_id = rig.api_id();
    drift(&mut rig.aws.state(), &api_id);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(names(&rig.writes()), fix.to_vec());
    assert!(status::is_ready(&obj.status.unwrap().conditions, 1));
}

#[tokio::test]
async fn a_route_deleted_behind_our_back_is_created_again() {
    drift_is_corrected(
        |s, api| {
            s.api(api)
                .unwrap()
                .routes
                .retain(|r| r.key != "GET /public");
        },
        &["CreateRoute"],
    )
    .await;
}

#[tokio::test]
async fn a_route_with_another_authorization_is_updated() {
    drift_is_corrected(
        |s, api| {
            let route = s
                .api(api)
                .unwrap()
                .routes
                .iter_mut()
                .find(|r| r.key == "GET /private")
                .unwrap();
            route.auth = crate::aws::apigateway::RouteAuth::None;
        },
        &["UpdateRoute"],
    )
    .await;
}

#[tokio::test]
async fn a_route_someone_added_is_deleted() {
    drift_is_corrected(
        |s, api| {
            let api = s.api(api).unwrap();
            let mut extra = api.routes[0].clone();
            extra.id = "extra".into();
            extra.key = "DELETE /everything".into();
            api.routes.push(extra);
        },
        &["DeleteRoute"],
    )
    .await;
}

#[tokio::test]
async fn an_integration_no_route_uses_is_deleted() {
    drift_is_corrected(
        |s, api| {
            s.api(api)
                .unwrap()
                .integrations
                .push(crate::aws::apigateway::Integration {
                    id: "stray".into(),
                    target: None,
                });
        },
        &["DeleteIntegration"],
    )
    .await;
}

#[tokio::test]
async fn an_authorizer_with_another_issuer_is_updated() {
    drift_is_corrected(
        |s, api| {
            s.api(api).unwrap().authorizers[0].issuer = "https://evil.example/".into();
        },
        &["UpdateAuthorizer"],
    )
    .await;
}

#[tokio::test]
async fn stage_settings_changed_behind_our_back_are_restored() {
    drift_is_corrected(
        |s, api| {
            s.api(api).unwrap().stage.as_mut().unwrap().auto_deploy = false;
        },
        &["UpdateStage"],
    )
    .await;
}

#[tokio::test]
async fn cors_changed_behind_our_back_is_restored() {
    drift_is_corrected(
        |s, api| {
            s.api(api).unwrap().api.cors = Some(Default::default());
        },
        &["UpdateApi"],
    )
    .await;
}

#[tokio::test]
async fn a_removed_lambda_permission_is_added_again() {
    drift_is_corrected(
        |s, _| {
            s.functions.get_mut(PUBLIC_FN).unwrap().clear();
        },
        &["AddPermission"],
    )
    .await;
}

#[tokio::test]
async fn a_lambda_permission_for_another_source_is_replaced() {
    drift_is_corrected(
        |s, _| {
            s.functions.get_mut(PUBLIC_FN).unwrap()[0].source_arn =
                Some("arn:aws:execute-api:us-east-1:1:other/*".into());
        },
        &["AddPermission", "RemovePermission"],
    )
    .await;
}

#[tokio::test]
async fn an_identity_pool_opened_to_guests_is_closed_again() {
    drift_is_corrected(
        |s, _| {
            s.pools.values_mut().next().unwrap().allow_unauthenticated = true;
        },
        &["UpdateIdentityPool"],
    )
    .await;
}

#[tokio::test]
async fn an_identity_pool_that_lost_our_tags_gets_them_back() {
    drift_is_corrected(
        |s, _| {
            s.pools
                .values_mut()
                .next()
                .unwrap()
                .tags
                .remove("authedapi.dev/owner");
        },
        &["UpdateIdentityPool"],
    )
    .await;
}

#[tokio::test]
async fn a_widened_trust_policy_is_restored() {
    drift_is_corrected(
        |s, _| {
            let role = s.roles.values_mut().next().unwrap();
            role.trust_policy = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]});
        },
        &["UpdateAssumeRolePolicy"],
    )
    .await;
}

#[tokio::test]
async fn a_role_that_lost_a_tag_gets_it_back() {
    drift_is_corrected(
        |s, _| {
            s.roles
                .values_mut()
                .next()
                .unwrap()
                .tags
                .remove("authedapi.dev/owner");
        },
        &["TagRole"],
    )
    .await;
}

#[tokio::test]
async fn a_widened_invoke_policy_is_restored() {
    drift_is_corrected(
        |s, _| {
            let policies = s.role_policies.values_mut().next().unwrap();
            let document = policies.values_mut().next().unwrap();
            document["Statement"][0]["Resource"] = json!("*");
        },
        &["PutRolePolicy"],
    )
    .await;
}

#[tokio::test]
async fn pool_roles_changed_behind_our_back_are_set_again() {
    drift_is_corrected(
        |s, _| {
            s.pool_roles.values_mut().next().unwrap().unauthenticated =
                Some("arn:aws:iam::1:role/open".into());
        },
        &["SetIdentityPoolRoles"],
    )
    .await;
}

#[tokio::test]
async fn a_client_id_removed_from_the_provider_is_added_again() {
    drift_is_corrected(
        |s, _| {
            s.providers.values_mut().next().unwrap().client_ids.clear();
        },
        &["AddClientIDToOpenIDConnectProvider"],
    )
    .await;
}

#[tokio::test]
async fn a_stale_outputs_config_map_is_rewritten() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    rig.cluster
        .config_maps
        .lock()
        .unwrap()
        .get_mut("seed-outputs")
        .unwrap()
        .data = Some(BTreeMap::new());
    rig.reconcile(&mut obj).await.unwrap();
    let events = rig.cluster.events();
    assert!(
        events
            .iter()
            .any(|e| e.reason == "Updated" && e.action == "WriteOutputs"),
        "{events:?}"
    );
    assert!(
        rig.cluster.config_maps.lock().unwrap()["seed-outputs"]
            .data
            .as_ref()
            .unwrap()
            .contains_key("endpoint")
    );
}

/// API Gateway tags cannot be corrected (see `TagUpkeep::Reported`): drift is a
/// Warning, and no write.
#[tokio::test]
async fn api_and_stage_tag_drift_is_reported_not_corrected() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let id = rig.api_id();
    {
        let mut s = rig.aws.state();
        let api = s.api(&id).unwrap();
        api.api.tags.remove("authedapi.dev/owner");
        api.stage.as_mut().unwrap().tags.clear();
    }
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.writes(), BTreeMap::new());
    let warnings: Vec<Published> = rig
        .cluster
        .events()
        .into_iter()
        .filter(|e| e.warning)
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .all(|w| w.reason == "TagsDrifted" && w.action == "TagResource")
    );
    assert!(warnings[0].note.contains(&format!("HTTP API {id}")));
    assert!(warnings[1].note.contains("$default stage"));
    assert!(
        warnings[1]
            .note
            .contains(&format!("/apis/{id}/stages/$default"))
    );
}

// --- spec changes ---------------------------------------------------------------------

#[tokio::test]
async fn a_removed_route_goes_with_its_integration_and_permission() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    obj.spec.routes.retain(|r| r.route != "GET /public");
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(
        names(&rig.writes()),
        vec!["DeleteIntegration", "DeleteRoute", "RemovePermission"],
        "GET /public needs no credentials: no role policy changes"
    );
    let status = obj.status.unwrap();
    assert_eq!(status.lambda_permissions, vec![PRIVATE_FN.to_string()]);
    assert!(status::is_ready(&status.conditions, 2));
}

#[tokio::test]
async fn a_removed_access_rule_takes_its_role_and_policy_with_it() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    obj.spec.access = None;
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    let writes = rig.writes();
    assert_eq!(writes.get("DeleteRole"), Some(&1));
    assert_eq!(writes.get("DeleteRolePolicy"), Some(&1));
    assert_eq!(rig.aws.state().roles.len(), 1);
    assert!(obj.status.unwrap().access_roles.is_empty());
}

#[tokio::test]
async fn no_jwt_route_left_deletes_the_authorizer_after_the_route() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    obj.spec.routes.retain(|r| r.route != "GET /reports");
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    let writes = rig.writes();
    assert_eq!(writes.get("DeleteAuthorizer"), Some(&1));
    assert_eq!(writes.get("DeleteRoute"), Some(&1));
    assert!(
        rig.aws
            .state()
            .apis
            .values()
            .next()
            .unwrap()
            .authorizers
            .is_empty()
    );
}

#[tokio::test]
async fn a_new_client_id_is_registered_before_the_old_one_is_released() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    obj.spec.auth0.client_id = "client-2".into();
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    let provider = rig.aws.state().providers.values().next().cloned().unwrap();
    assert_eq!(provider.client_ids, vec!["client-2".to_string()]);
    assert_eq!(
        obj.status.unwrap().oidc_client_id.as_deref(),
        Some("client-2")
    );
}

#[tokio::test]
async fn a_client_id_another_object_uses_is_not_released() {
    let mut rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let mut other = seed();
    other.metadata.name = Some("other".into());
    other.metadata.uid = Some("uid-2".into());
    rig.objects
        .apply_watcher_event(&watcher::Event::Apply(other));
    obj.spec.auth0.client_id = "client-2".into();
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    let mut ids = rig
        .aws
        .state()
        .providers
        .values()
        .next()
        .unwrap()
        .client_ids
        .clone();
    ids.sort();
    assert_eq!(ids, vec!["client-1".to_string(), "client-2".to_string()]);
}

// --- failures ---------------------------------------------------------------------------

#[tokio::test]
async fn a_role_still_propagating_is_progress_not_a_stall() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.aws
        .fail_next("SetIdentityPoolRoles", ErrorKind::Invalid);
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "AwsUnavailable");
    assert!(!e.stalls());
    assert!(e.to_string().contains("propagate"), "{e}");
    // The next reconcile gets there.
    rig.reconcile(&mut obj).await.unwrap();
}

#[tokio::test]
async fn an_old_role_refused_by_cognito_stalls() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    {
        let mut s = rig.aws.state();
        for role in s.roles.values_mut() {
            role.created = Some(std::time::SystemTime::now() - Duration::from_secs(3600));
        }
        s.pool_roles.clear();
    }
    rig.aws
        .fail_next("SetIdentityPoolRoles", ErrorKind::Invalid);
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "AwsRejected");
    assert!(e.stalls());
}

#[tokio::test]
async fn a_create_that_races_is_observed_again_once() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.aws
        .fail_next("CreateOpenIDConnectProvider", ErrorKind::Conflict);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.aws.state().providers.len(), 1);
}

#[tokio::test]
async fn a_missing_function_is_named_in_the_error() {
    let rig = Rig::new();
    rig.aws.state().functions.remove(PUBLIC_FN);
    let mut obj = seed();
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert!(e.to_string().contains(PUBLIC_FN), "{e}");
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[tokio::test]
async fn throttling_is_retried_without_a_warning_event() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.aws.fail_next("CreateApi", ErrorKind::Throttled);
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "Throttled");
    assert!(rig.cluster.events().iter().all(|e| !e.warning));
}

#[tokio::test]
async fn a_failure_is_a_warning_event_and_a_condition_with_the_same_words() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.aws.fail_next("CreateRole", ErrorKind::AccessDenied);
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    let warning = rig
        .cluster
        .events()
        .into_iter()
        .find(|e| e.warning)
        .unwrap();
    assert_eq!(warning.reason, "AccessDenied");
    assert_eq!(warning.note, e.to_string());
    let status = obj.status.unwrap();
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.message, e.to_string());
}

#[tokio::test]
async fn a_function_outside_the_namespaces_allowance_is_refused_before_any_aws_call() {
    let rig = Rig::new();
    let mut obj = seed();
    obj.spec.routes[0]
        .target
        .lambda
        .as_mut()
        .unwrap()
        .function_arn = "arn:aws:lambda:us-east-1:999999999999:function:theirs".into();
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "NotAllowed");
    assert!(e.to_string().contains("nothing was changed in AWS"), "{e}");
    let s = rig.aws.state();
    assert_eq!((s.writes_total(), s.reads.len()), (0, 0));
}

// --- deletion ---------------------------------------------------------------------------

#[tokio::test]
async fn deletion_removes_everything_of_ours_and_nothing_else() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    rig.aws
        .state()
        .functions
        .get_mut(PUBLIC_FN)
        .unwrap()
        .push(crate::aws::lambda::Permission {
            sid: "someone-elses".into(),
            principal: Some("s3.amazonaws.com".into()),
            source_arn: None,
        });
    rig.delete(&obj).await.unwrap();
    let s = rig.aws.state();
    assert!(
        s.apis.is_empty() && s.pools.is_empty() && s.roles.is_empty(),
        "{s:?}"
    );
    assert!(
        s.providers.is_empty(),
        "the provider we created, with no client id left"
    );
    assert_eq!(s.functions[PUBLIC_FN].len(), 1, "their statement stays");
    assert_eq!(s.functions[PUBLIC_FN][0].sid, "someone-elses");
    assert!(s.functions[PRIVATE_FN].is_empty());
    assert!(rig.cluster.config_maps.lock().unwrap().is_empty());
}

#[tokio::test]
async fn deletion_of_what_is_already_gone_succeeds() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    {
        let mut s = rig.aws.state();
        s.apis.clear();
        s.pools.clear();
        s.role_policies.clear();
        s.roles.clear();
        s.providers.clear();
        s.functions.remove(PUBLIC_FN);
    }
    rig.delete(&obj).await.unwrap();
}

#[tokio::test]
async fn deletion_after_a_crash_finds_an_api_whose_id_never_reached_status() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let status = obj.status.as_mut().unwrap();
    status.api_id = None;
    status.pending_creates = vec!["HttpApi".into()];
    rig.delete(&obj).await.unwrap();
    assert!(rig.aws.state().apis.is_empty());
}

#[tokio::test]
async fn deletion_with_retain_changes_nothing_in_aws() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    obj.spec.deletion_policy = DeletionPolicy::Retain;
    rig.delete(&obj).await.unwrap();
    assert_eq!(rig.aws.state().writes_total(), 0);
    assert!(rig.cluster.events().iter().any(|e| e.reason == "Retained"));
}

// --- pause and observe-only -----------------------------------------------------------

fn annotate(obj: &mut AuthedApi, key: &str) {
    obj.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(key.into(), "true".into());
}

#[tokio::test]
async fn a_paused_object_makes_no_aws_call_at_all_and_says_so_once() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let saved_before = rig.cluster.statuses.lock().unwrap().len();
    annotate(&mut obj, PAUSED);
    obj.spec.routes.pop();
    obj.metadata.generation = Some(2);
    for _ in 0..2 {
        let requeue = reconcile(Arc::new(obj.clone()), rig.ctx.clone())
            .await
            .unwrap();
        assert_eq!(requeue, Requeue::await_change());
        obj.status = Some(rig.cluster.last_status());
    }
    let s = rig.aws.state();
    assert_eq!(
        (s.writes_total(), s.reads.len()),
        (0, 0),
        "{:?} {:?}",
        s.writes,
        s.reads
    );
    let status = obj.status.unwrap();
    assert!(status::is_paused(&status.conditions));
    assert!(
        status::is_ready(&status.conditions, 1),
        "Ready still describes generation 1"
    );
    assert_eq!(
        rig.cluster.statuses.lock().unwrap().len(),
        saved_before + 1,
        "one status write, for the condition"
    );
    let paused: Vec<_> = rig
        .cluster
        .events()
        .into_iter()
        .filter(|e| e.reason == "Paused")
        .collect();
    assert_eq!(paused.len(), 1);
}

#[tokio::test]
async fn observe_only_writes_nothing_and_lists_what_it_would_do() {
    let rig = Rig::new();
    let mut obj = seed();
    annotate(&mut obj, OBSERVE_ONLY);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.aws.state().writes_total(), 0);
    let status = obj.status.unwrap();
    assert!(status.api_id.is_none());
    assert_eq!(
        status.planned_changes,
        vec![
            "CreateOpenIDConnectProvider: Created OIDC provider https://tenant.us.auth0.com",
            "CreateApi: Created the HTTP API",
        ]
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ObserveOnly")
    );
    assert!(
        status.conditions.iter().all(|c| c.type_ == "Ready"),
        "neither reconciling nor stalled"
    );
    let would: Vec<_> = rig
        .cluster
        .events()
        .into_iter()
        .filter(|e| e.reason == "WouldChange")
        .collect();
    assert_eq!(would.len(), 2);
    assert_eq!(would[1].action, "Reconcile CreateApi");
}

#[tokio::test]
async fn observe_only_on_a_drifted_object_shows_the_diff_and_corrects_nothing() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let id = rig.api_id();
    rig.aws
        .state()
        .api(&id)
        .unwrap()
        .routes
        .retain(|r| r.key != "GET /public");
    annotate(&mut obj, OBSERVE_ONLY);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.aws.state().writes_total(), 0);
    assert_eq!(
        obj.status.as_ref().unwrap().planned_changes,
        vec!["CreateRoute GET /public: Created route GET /public (NONE)"]
    );
    // Without the annotation, the same diff is applied and the list empties.
    obj.metadata.annotations = None;
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(names(&rig.writes()), vec!["CreateRoute"]);
    let status = obj.status.unwrap();
    assert!(status.planned_changes.is_empty());
    assert!(status::is_ready(&status.conditions, 1));
}

#[tokio::test]
async fn observe_only_on_a_matching_object_is_ready() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    annotate(&mut obj, OBSERVE_ONLY);
    rig.reconcile(&mut obj).await.unwrap();
    let status = obj.status.unwrap();
    assert!(status.planned_changes.is_empty());
    assert!(status::is_ready(&status.conditions, 1));
}

#[tokio::test]
async fn deleting_an_observe_only_object_leaves_aws_alone() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    annotate(&mut obj, OBSERVE_ONLY);
    rig.delete(&obj).await.unwrap();
    assert_eq!(rig.aws.state().writes_total(), 0);
    assert_eq!(rig.aws.state().apis.len(), 1);
}

// --- the old unit tests of this module ----------------------------------------------------

#[test]
fn backoff_grows_and_is_capped() {
    let resync = Duration::from_secs(600);
    let first = backoff(1, false, resync);
    assert!(first >= Duration::from_secs(1) && first <= Duration::from_millis(1200));
    let fifth = backoff(5, false, resync);
    assert!(fifth >= Duration::from_secs(16) && fifth <= Duration::from_millis(19200));
    assert!(backoff(30, false, resync) <= Duration::from_secs(360));
    let stalled = backoff(1, true, resync);
    assert!(stalled >= Duration::from_secs(30) && stalled <= Duration::from_secs(36));
    assert!(backoff(30, true, resync) <= Duration::from_secs(720));
    let short = Duration::from_secs(10);
    assert!(backoff(30, false, short) <= Duration::from_secs(12));
    assert!(backoff(30, true, short) <= Duration::from_secs(36));
}

#[test]
fn reasons_and_stalls() {
    let aws = |kind| {
        Error::Aws(AwsError {
            kind,
            service: "iam",
            operation: "CreateRole",
            code: "X".into(),
            message: "m".into(),
        })
    };
    assert!(aws(ErrorKind::AccessDenied).stalls());
    assert!(aws(ErrorKind::Invalid).stalls());
    assert!(!aws(ErrorKind::Throttled).stalls());
    assert!(!aws(ErrorKind::Transient).stalls());
    assert_eq!(aws(ErrorKind::Throttled).reason(), "Throttled");
    assert!(Error::NoRegion.stalls());
    assert!(Error::InvalidSpec(plan::PlanError("x".into())).stalls());
}

#[test]
fn every_registered_kind_names_its_creates_once() {
    let creates: Vec<&str> = kinds::creates().collect();
    let mut unique = creates.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), creates.len(), "{creates:?}");
    for kind in kinds::REGISTERED {
        assert!(
            kind.pending.is_none() || !kind.unique_names,
            "{}: a pending marker is for names AWS does not keep unique",
            kind.name
        );
    }
}
