//! The fast layer: whole reconciles in-process, against the in-memory AWS
//! ([`crate::aws::fake`]) and an in-memory [`Cluster`]. The `kube::Client` in the context
//! is a tower-test mock nobody answers: reconcile logic reaches Kubernetes only through
//! `Cluster`; the finalizer, which needs the client, is tested with one that answers
//! (`finalizer.rs`).
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
use super::events::{Action, Call, Reason};
use super::*;
use crate::api::AuthedApi;
use crate::aws::ErrorKind;
use crate::aws::fake::FakeAws;
use crate::aws::iam::Role;
use crate::aws::provider::AccountError;
use crate::metrics::Metrics;
use crate::tenant::{AuthedApiTenant, Defaults};

const ACCOUNT: &str = "123456789012";
const PRIVATE_FN: &str = "arn:aws:lambda:us-east-1:123456789012:function:private";
const PUBLIC_FN: &str = "arn:aws:lambda:us-east-1:123456789012:function:public";
/// A function only a Lambda authorizer runs.
const AUTH_FN: &str = "arn:aws:lambda:us-east-1:123456789012:function:authorizer";

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
    /// The AuthedApiTenants as the API server has them (the cache may be behind).
    tenants: Mutex<Vec<AuthedApiTenant>>,
    /// The AuthedApis as the API server has them: the objects' store, unless a test says.
    objects: Mutex<Option<reflector::Store<AuthedApi>>>,
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
        // The chart's admission policy admits only these keys.
        for key in config_map.data.iter().flatten().map(|(k, _)| k) {
            assert!(
                crate::reconcile::kinds::outputs::OUTPUT_KEYS.contains(&key.as_str()),
                "outputs key {key} is not in OUTPUT_KEYS"
            );
        }
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

    async fn tenants(&self) -> Result<Vec<AuthedApiTenant>, kube::Error> {
        Ok(self.tenants.lock().unwrap().clone())
    }

    async fn authed_api(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<AuthedApi>, kube::Error> {
        let objects = self.objects.lock().unwrap();
        Ok(objects.as_ref().and_then(|store| {
            store
                .get(&reflector::ObjectRef::new(name).within(namespace))
                .map(|o| (*o).clone())
        }))
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
        Self::with_resource_tags(BTreeMap::new())
    }

    /// A rig whose operator runs with `--resource-tags` `resource_tags`.
    fn with_resource_tags(resource_tags: BTreeMap<String, String>) -> Self {
        // Nobody answers this API server: a call through it fails the test.
        let (service, _nobody) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        Self::with_client(kube::Client::new(service, "default"), resource_tags)
    }

    /// A rig whose Kubernetes client (the finalizer's) is `client`.
    fn with_client(client: kube::Client, resource_tags: BTreeMap<String, String>) -> Self {
        let aws = FakeAws::default();
        {
            let mut s = aws.state();
            s.functions.insert(PRIVATE_FN.into(), Vec::new());
            s.functions.insert(PUBLIC_FN.into(), Vec::new());
            s.functions.insert(AUTH_FN.into(), Vec::new());
        }
        let cluster = Arc::new(FakeCluster::default());
        let (store, objects) = reflector::store();
        *cluster.objects.lock().unwrap() = Some(store.clone());
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
                    allowed_private_targets: vec!["arn:aws:*:*:123456789012:*".into()],
                    allowed_issuers: vec!["*.auth0.com".into()],
                    own_account: true,
                },
                resource_tags,
                drift_check_slots: 4,
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
        self.ctx.make_due(obj.metadata.uid.as_deref().unwrap());
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

    /// The client ids on the one OIDC provider, sorted.
    fn client_ids(&self) -> Vec<String> {
        let s = self.aws.state();
        let mut ids = s
            .providers
            .values()
            .next()
            .expect("a provider")
            .client_ids
            .clone();
        ids.sort();
        ids
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

/// `obj` with a Lambda authorizer `users` (running AUTH_FN) on a route GET /lambda.
fn with_lambda_authorizer(mut obj: AuthedApi) -> AuthedApi {
    obj.spec.authorizers = serde_json::from_value(json!([
        {"name": "users", "lambda": {"functionArn": AUTH_FN}}
    ]))
    .expect("authorizers");
    obj.spec.routes.push(
        serde_json::from_value(json!({
            "route": "GET /lambda", "authorization": "lambda", "authorizer": "users",
            "target": {"lambda": {"functionArn": PUBLIC_FN}}
        }))
        .expect("a lambda route"),
    );
    obj
}

/// The seed as another object, `name` with `uid`, writing no outputs.
fn another(name: &str, uid: &str) -> AuthedApi {
    let mut obj = seed();
    obj.metadata.name = Some(name.into());
    obj.metadata.uid = Some(uid.into());
    obj.spec.outputs = None;
    obj
}

fn names(writes: &BTreeMap<&'static str, usize>) -> Vec<&'static str> {
    writes.keys().copied().collect()
}

/// Every AWS call the fake saw, reads and writes.
fn calls(rig: &Rig) -> usize {
    let state = rig.aws.state();
    state.writes_total() + state.reads.values().sum::<usize>()
}

mod accounts;
mod adoption;
mod crash_safety;
mod creation;
mod deletion;
mod domains;
mod drift;
mod errors_and_backoff;
mod failures;
mod finalizer;
mod issuers;
mod lambda_authorizers;
mod model;
mod order;
mod ownership;
mod pause_and_observe_only;
mod reconcile_now;
mod spec_changes;
mod tags;
mod vpc_links;
