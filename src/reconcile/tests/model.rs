//! The lifecycle as a state machine, over random histories (proptest-state-machine): two
//! namespaces' objects, three AWS accounts (the operator's, two tenants'; in-memory fakes)
//! and the things that happen to them: spec edits (issuers allowed or not, client ids,
//! routes, access rules, outputs, tags), tenants changing (an account mapped, moved, moved
//! back, a role revoked, an issuer allowed or not) with the operator's tenants cache behind
//! the API server until it catches up, pause and observe-only on and off, resources
//! deleted or changed out of band, AWS faults (throttling, 5xx once; AccessDenied until
//! fixed), operator restarts and crashes before any status write, and deletes.
//!
//! Checked as the history runs:
//! * an object Ready for its generation has AWS as its spec says (API and routes, pool
//!   federating its provider, the provider trusting its client id, its role, its Lambda
//!   permissions);
//! * a Stalled object stays Stalled, for the same reason, on the next reconcile once the
//!   caches caught up and faults that heal by themselves are gone (no false alarm);
//! * nothing of anyone else's is changed (a provider, a role and a Lambda permission that
//!   are not ours, in every account).
//!
//! And at its end, every object is deleted: each delete finishes, or is Stalled (or
//! Paused) naming what blocks it and the way out, and stays so; then a person does what
//! the condition says (the namespace mapped back to the object's account, its role fixed,
//! the pause lifted), every delete finishes, and no resource, client id or record of ours
//! is left in any account (only what observe-only deletes retained, as documented).
//!
//! `PROPTEST_CASES` sets how many histories (default 2,000; README: "Testing").

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

use super::*;
use crate::aws::error::AwsError;
use crate::aws::lambda::Permission;
use crate::aws::provider::AwsProvider;
use crate::tenant::{AuthedApiTenantSpec, TenantAws};

const OWN: &str = "123456789012";
const TENANT_ACCOUNTS: [&str; 2] = ["210987654321", "333344445555"];
const NAMESPACES: [&str; 2] = ["ns-0", "ns-1"];
const FOREIGN_ROLE: &str = "someone-elses-role";
const FOREIGN_SID: &str = "someone-elses";
/// Their provider for our Auth0 domain, in the second tenant's account, trusting "theirs".
const FOREIGN_PROVIDER_ACCOUNT: usize = 2;
const REFUSED_ISSUER: &str = "idp.example.com/realms/x";

/// Every operation the fake knows, for faults.
const OPERATIONS: &[Call] = &[
    Call::AddClientIdToOpenIdConnectProvider,
    Call::AddPermission,
    Call::CreateApi,
    Call::CreateAuthorizer,
    Call::CreateIdentityPool,
    Call::CreateIntegration,
    Call::CreateOpenIdConnectProvider,
    Call::CreateRole,
    Call::CreateRoute,
    Call::CreateStage,
    Call::DeleteApi,
    Call::DeleteAuthorizer,
    Call::DeleteIdentityPool,
    Call::DeleteIntegration,
    Call::DeleteOpenIdConnectProvider,
    Call::DeleteRole,
    Call::DeleteRolePolicy,
    Call::DeleteRoute,
    Call::DeleteStage,
    Call::DescribeIdentityPool,
    Call::GetApi,
    Call::GetApis,
    Call::GetPolicy,
    Call::GetRole,
    Call::GetRolePolicy,
    Call::GetRoutes,
    Call::GetStage,
    Call::ListIdentityPools,
    Call::ListRolePolicies,
    Call::PutRolePolicy,
    Call::RemoveClientIdFromOpenIdConnectProvider,
    Call::RemovePermission,
    Call::SetIdentityPoolRoles,
    Call::TagOpenIdConnectProvider,
    Call::TagRole,
    Call::UntagOpenIdConnectProvider,
    Call::UntagRole,
    Call::UpdateApi,
    Call::UpdateAssumeRolePolicy,
    Call::UpdateAuthorizer,
    Call::UpdateIdentityPool,
    Call::UpdateRoute,
    Call::UpdateStage,
    Call::TagResource,
    Call::UntagResource,
    Call::GetIdentityPoolRoles,
];

/// An object's spec, from a few choices that reach every kind.
#[derive(Clone, Debug, PartialEq)]
struct Spec {
    /// 0, 1: Auth0 with client 1 or 2; 2: an OIDC realm only a tenant may allow; 3: an
    /// issuer nobody allows and the operator's IAM policy does not cover.
    issuer: u8,
    /// The seed's four routes, or two.
    all_routes: bool,
    access: bool,
    outputs: bool,
    tags: bool,
    /// A Lambda authorizer and the route it decides.
    lambda_authorizer: bool,
}

/// What a namespace's AuthedApiTenant says (None: no tenant selects it).
#[derive(Clone, Debug, PartialEq)]
struct Mapping {
    /// Which tenant account (None: the operator's own).
    account: Option<usize>,
    /// The tenant gives the wrong external id: its role refuses the operator.
    revoked: bool,
    allow_realm: bool,
}

#[derive(Clone, Debug)]
enum Step {
    Create(usize, Spec),
    Edit(usize, Spec),
    Delete(usize),
    Pause(usize, bool),
    ObserveOnly(usize, bool),
    Reconcile(usize),
    Tenant(usize, Option<Mapping>),
    CacheCatchUp,
    /// Delete the object's API (0), pool (1), role (2), provider (3) or permissions (4).
    OutOfBand(usize, u8),
    /// Remove a route (0), rewrite the role's policy (1), drop the client id (2).
    Drift(usize, u8),
    /// In an account: operation, and 0 throttled / 1 5xx (once), 2 AccessDenied (until
    /// fixed).
    Fault(usize, usize, u8),
    FixFaults,
    Restart,
    /// Reconcile with the process dying before its nth status write, then restart.
    Crash(usize, u32),
}

/// What the history generator needs to know: which namespaces have a live object.
#[derive(Clone, Debug, Default)]
struct Reference {
    live: [bool; 2],
}

struct Lifecycle;

fn spec_strategy() -> impl Strategy<Value = Spec> {
    (
        0u8..4,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(issuer, all_routes, access, outputs, tags, lambda_authorizer)| Spec {
                // The refused issuer less often: it makes the rest of a history dull.
                issuer: if issuer == 3 && !tags { 0 } else { issuer },
                all_routes,
                access,
                outputs,
                tags,
                lambda_authorizer,
            },
        )
}

fn mapping_strategy() -> impl Strategy<Value = Option<Mapping>> {
    prop_oneof![
        1 => Just(None),
        4 => (prop::option::of(0usize..2), prop::bool::weighted(0.2), any::<bool>()).prop_map(
            |(account, revoked, allow_realm)| Some(Mapping {
                account,
                revoked: revoked && account.is_some(),
                allow_realm,
            })
        ),
    ]
}

impl ReferenceStateMachine for Lifecycle {
    type State = Reference;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Reference> {
        Just(Reference::default()).boxed()
    }

    fn transitions(_: &Reference) -> BoxedStrategy<Step> {
        let slot = 0usize..2;
        prop_oneof![
            3 => (slot.clone(), spec_strategy()).prop_map(|(i, s)| Step::Create(i, s)),
            3 => (slot.clone(), spec_strategy()).prop_map(|(i, s)| Step::Edit(i, s)),
            2 => slot.clone().prop_map(Step::Delete),
            1 => (slot.clone(), any::<bool>()).prop_map(|(i, on)| Step::Pause(i, on)),
            1 => (slot.clone(), any::<bool>()).prop_map(|(i, on)| Step::ObserveOnly(i, on)),
            10 => slot.clone().prop_map(Step::Reconcile),
            3 => (slot.clone(), mapping_strategy()).prop_map(|(i, m)| Step::Tenant(i, m)),
            2 => Just(Step::CacheCatchUp),
            1 => (slot.clone(), 0u8..5).prop_map(|(i, w)| Step::OutOfBand(i, w)),
            1 => (slot.clone(), 0u8..3).prop_map(|(i, w)| Step::Drift(i, w)),
            2 => (0usize..3, 0..OPERATIONS.len(), 0u8..3).prop_map(|(a, o, k)| Step::Fault(a, o, k)),
            1 => Just(Step::FixFaults),
            1 => Just(Step::Restart),
            2 => (slot, 1u32..6).prop_map(|(i, n)| Step::Crash(i, n)),
        ]
        .boxed()
    }

    fn preconditions(state: &Reference, step: &Step) -> bool {
        match step {
            Step::Create(i, _) => !state.live[*i],
            Step::Edit(i, _) | Step::Delete(i) => state.live[*i],
            _ => true,
        }
    }

    fn apply(mut state: Reference, step: &Step) -> Reference {
        match step {
            Step::Create(i, _) => state.live[*i] = true,
            Step::Delete(i) => state.live[*i] = false,
            _ => {}
        }
        state
    }
}

/// Kubernetes as the model has it: the API server's objects and tenants, and a process
/// that may die before a status write.
#[derive(Default)]
struct ModelCluster {
    objects: Mutex<BTreeMap<(String, String), AuthedApi>>,
    tenants: Mutex<Vec<AuthedApiTenant>>,
    config_maps: Mutex<BTreeMap<(String, String), ConfigMap>>,
    /// Status writes left before the process dies (Some(1): at the next one).
    crash_in: Mutex<Option<u32>>,
    /// The process died: nothing it still tries to write gets through.
    dead: Mutex<bool>,
}

#[async_trait::async_trait]
impl Cluster for ModelCluster {
    async fn save_status(
        &self,
        namespace: &str,
        name: &str,
        status: &AuthedApiStatus,
    ) -> Result<(), kube::Error> {
        {
            let mut crash = self.crash_in.lock().unwrap();
            let mut dead = self.dead.lock().unwrap();
            match *crash {
                Some(1) => {
                    *crash = None;
                    *dead = true;
                }
                Some(n) => *crash = Some(n - 1),
                None => {}
            }
            if *dead {
                return Err(kube::Error::Service("the operator died".into()));
            }
        }
        if let Some(obj) = self
            .objects
            .lock()
            .unwrap()
            .get_mut(&(namespace.to_owned(), name.to_owned()))
        {
            obj.status = Some(status.clone());
        }
        Ok(())
    }

    async fn publish(&self, _: &AuthedApi, _: EventType, _: Reason, _: &Action, _: String) {}

    async fn config_map(&self, ns: &str, name: &str) -> Result<Option<ConfigMap>, kube::Error> {
        let key = (ns.to_owned(), name.to_owned());
        Ok(self.config_maps.lock().unwrap().get(&key).cloned())
    }

    async fn apply_config_map(&self, ns: &str, config_map: &ConfigMap) -> Result<(), kube::Error> {
        let key = (ns.to_owned(), config_map.metadata.name.clone().unwrap());
        self.config_maps
            .lock()
            .unwrap()
            .insert(key, config_map.clone());
        Ok(())
    }

    async fn delete_config_map(&self, ns: &str, name: &str) -> Result<(), kube::Error> {
        let key = (ns.to_owned(), name.to_owned());
        self.config_maps.lock().unwrap().remove(&key);
        Ok(())
    }

    async fn namespace_labels(&self, _: &str) -> Result<BTreeMap<String, String>, kube::Error> {
        Ok(BTreeMap::new())
    }

    async fn tenants(&self) -> Result<Vec<AuthedApiTenant>, kube::Error> {
        Ok(self.tenants.lock().unwrap().clone())
    }

    async fn authed_api(&self, ns: &str, name: &str) -> Result<Option<AuthedApi>, kube::Error> {
        let key = (ns.to_owned(), name.to_owned());
        Ok(self.objects.lock().unwrap().get(&key).cloned())
    }
}

fn tenant_aws(account: usize, revoked: bool) -> TenantAws {
    TenantAws {
        role_arn: format!("arn:aws:iam::{}:role/authedapi", TENANT_ACCOUNTS[account]),
        external_id: Some(if revoked { "wrong" } else { "agreed" }.into()),
        session_name: None,
        region: None,
        permissions_boundary: None,
        rate_limits: vec![],
    }
}

fn tenant_for(ns: usize, mapping: &Mapping) -> AuthedApiTenant {
    let mut issuers = vec!["*.auth0.com".to_owned()];
    if mapping.allow_realm {
        issuers.push("login.example.com/realms/*".into());
    }
    AuthedApiTenant {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("tenant-{ns}")),
            ..Default::default()
        },
        spec: AuthedApiTenantSpec {
            namespaces: vec![NAMESPACES[ns].into()],
            namespace_selector: None,
            allowed_functions: vec!["arn:aws:lambda:*:*:function:*".into()],
            allowed_private_targets: Vec::new(),
            allowed_issuers: Some(issuers),
            aws: mapping.account.map(|a| tenant_aws(a, mapping.revoked)),
        },
    }
}

fn object(ns: usize, name: &str, uid: &str, spec: &Spec) -> AuthedApi {
    let mut obj = seed();
    obj.metadata.namespace = Some(NAMESPACES[ns].into());
    obj.metadata.name = Some(name.into());
    obj.metadata.uid = Some(uid.into());
    obj.metadata.finalizers = None;
    set_spec(&mut obj, spec);
    obj
}

fn set_spec(obj: &mut AuthedApi, spec: &Spec) {
    let template = seed();
    let s = &mut obj.spec;
    s.auth0 = None;
    s.oidc = None;
    match spec.issuer {
        0 | 1 => {
            s.auth0 = Some(
                serde_json::from_value(json!({
                    "domain": "https://tenant.us.auth0.com",
                    "clientId": format!("client-{}", spec.issuer + 1)
                }))
                .unwrap(),
            )
        }
        2 => {
            s.oidc = Some(crate::api::Oidc {
                issuer: "https://login.example.com/realms/a".into(),
                client_id: "client-1".into(),
                audience: None,
            })
        }
        _ => {
            s.oidc = Some(crate::api::Oidc {
                issuer: format!("https://{REFUSED_ISSUER}"),
                client_id: "client-1".into(),
                audience: None,
            })
        }
    }
    s.routes = template.spec.routes.clone();
    if !spec.all_routes {
        s.routes.truncate(2);
    }
    s.authorizers.clear();
    if spec.lambda_authorizer {
        let with = with_lambda_authorizer(template);
        s.authorizers = with.spec.authorizers;
        s.routes.extend(
            with.spec
                .routes
                .into_iter()
                .filter(|r| r.authorizer.is_some()),
        );
    }
    s.access = spec.access.then(|| {
        serde_json::from_value(json!({"rules": [
            {"name": "admins", "claim": "email", "value": "admin@example.com",
             "routes": ["GET /private"]}
        ]}))
        .unwrap()
    });
    s.outputs = spec.outputs.then(|| crate::api::Outputs {
        config_map_name: format!("{}-outputs", obj.metadata.name.clone().unwrap()),
    });
    s.tags = if spec.tags {
        BTreeMap::from([("team".to_owned(), "payments".to_owned())])
    } else {
        BTreeMap::new()
    };
}

/// The system under test: the operator's reconcile, in-process, against the fakes.
struct World {
    rt: tokio::runtime::Runtime,
    /// The operator's own account, then the tenants'.
    accounts: [FakeAws; 3],
    cluster: Arc<ModelCluster>,
    ctx: Arc<Context>,
    objects: reflector::store::Writer<AuthedApi>,
    objects_store: reflector::Store<AuthedApi>,
    tenants_store: reflector::Store<AuthedApiTenant>,
    /// Each namespace's objects by name, oldest first; the live one, if any, last.
    names: [Vec<String>; 2],
    live: [bool; 2],
    created: usize,
    mappings: [Option<Mapping>; 2],
    /// Objects whose delete kept their AWS resources (observe-only).
    retained: Vec<AuthedApi>,
    /// What the foreign provider looked like at the start.
    foreign_provider: crate::aws::iam::OidcProvider,
}

impl World {
    fn new() -> Self {
        let accounts = [
            FakeAws::in_account(OWN),
            FakeAws::in_account(TENANT_ACCOUNTS[0]),
            FakeAws::in_account(TENANT_ACCOUNTS[1]),
        ];
        for fake in &accounts {
            let mut s = fake.state();
            let foreign = Permission {
                sid: FOREIGN_SID.into(),
                principal: Some("s3.amazonaws.com".into()),
                source_arn: None,
            };
            s.functions.insert(PRIVATE_FN.into(), Vec::new());
            s.functions.insert(AUTH_FN.into(), Vec::new());
            s.functions.insert(PUBLIC_FN.into(), vec![foreign]);
            s.denied_issuers.insert(REFUSED_ISSUER.into());
            let arn = format!("arn:aws:iam::{}:role/{FOREIGN_ROLE}", s.account());
            s.roles.insert(
                FOREIGN_ROLE.into(),
                Role {
                    name: FOREIGN_ROLE.into(),
                    arn,
                    trust_policy: json!({}),
                    tags: BTreeMap::new(),
                    created: None,
                },
            );
        }
        let foreign_provider = crate::aws::iam::OidcProvider {
            arn: format!(
                "arn:aws:iam::{}:oidc-provider/tenant.us.auth0.com",
                TENANT_ACCOUNTS[FOREIGN_PROVIDER_ACCOUNT - 1]
            ),
            url: "tenant.us.auth0.com".into(),
            client_ids: vec!["theirs".into()],
            tags: BTreeMap::from([("owner".to_owned(), "someone else".to_owned())]),
        };
        accounts[FOREIGN_PROVIDER_ACCOUNT]
            .state()
            .providers
            .insert(foreign_provider.arn.clone(), foreign_provider.clone());
        let cluster = Arc::new(ModelCluster::default());
        let (objects_store, objects) = reflector::store();
        let (tenants_store, _) = reflector::store();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let entered = rt.enter();
        let ctx = Arc::new(Self::context(
            &accounts,
            cluster.clone(),
            objects_store.clone(),
            tenants_store.clone(),
        ));
        drop(entered);
        let mut world = Self {
            rt,
            ctx,
            accounts,
            cluster,
            objects,
            objects_store,
            tenants_store,
            names: [Vec::new(), Vec::new()],
            live: [false; 2],
            created: 0,
            mappings: [None, None],
            retained: Vec::new(),
            foreign_provider,
        };
        world.catch_up();
        world
    }

    /// A fresh operator process: nothing remembered, the same caches.
    fn context(
        accounts: &[FakeAws; 3],
        cluster: Arc<ModelCluster>,
        objects: reflector::Store<AuthedApi>,
        tenants: reflector::Store<AuthedApiTenant>,
    ) -> Context {
        let (service, _nobody) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let mut aws = AwsProvider::fixed(accounts[0].clients(), OWN, Some("us-east-1"));
        for (i, fake) in accounts[1..].iter().enumerate() {
            aws = aws
                .with_fixed(tenant_aws(i, false), fake.clients())
                .with_refused(
                    tenant_aws(i, true),
                    "AccessDenied: not authorized to perform: sts:AssumeRole (external id)",
                );
        }
        Context::new(
            kube::Client::new(service, "default"),
            cluster,
            aws,
            Settings {
                cluster_id: "test".into(),
                resync: Duration::from_secs(600),
                permissions_boundary: "authedapi-boundary".into(),
                defaults: Defaults {
                    allowed_functions: vec!["arn:aws:lambda:*:*:function:*".into()],
                    allowed_private_targets: Vec::new(),
                    allowed_issuers: vec!["*.auth0.com".into()],
                    own_account: true,
                },
                resource_tags: BTreeMap::new(),
                drift_check_slots: 4,
            },
            Arc::new(Metrics::default()),
            objects,
            tenants,
        )
    }

    fn restart(&mut self) {
        let _entered = self.rt.enter();
        self.ctx = Arc::new(Self::context(
            &self.accounts,
            self.cluster.clone(),
            self.objects_store.clone(),
            self.tenants_store.clone(),
        ));
    }

    /// The caches see what the API server has.
    fn catch_up(&mut self) {
        let objects: Vec<AuthedApi> = self
            .cluster
            .objects
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect();
        self.objects.apply_watcher_event(&watcher::Event::Init);
        for obj in objects {
            self.objects
                .apply_watcher_event(&watcher::Event::InitApply(obj));
        }
        self.objects.apply_watcher_event(&watcher::Event::InitDone);
        let tenants = self.cluster.tenants.lock().unwrap().clone();
        let (store, mut writer) = reflector::store();
        for t in tenants {
            writer.apply_watcher_event(&watcher::Event::Apply(t));
        }
        self.tenants_store = store;
        // The running process reads the new cache (a restart keeps it too).
        Arc::get_mut(&mut self.ctx)
            .expect("no reconcile holds the context between steps")
            .tenants = self.tenants_store.clone();
    }

    /// The API server took a change to `obj` (spec, annotations, deletion): the object
    /// cache has it before the controller reconciles it, as a reflector does.
    fn put(&mut self, obj: AuthedApi) {
        let key = (obj.namespace().unwrap(), obj.name_any());
        self.objects
            .apply_watcher_event(&watcher::Event::Apply(obj.clone()));
        self.cluster.objects.lock().unwrap().insert(key, obj);
    }

    fn remove(&mut self, obj: &AuthedApi) {
        let key = (obj.namespace().unwrap(), obj.name_any());
        self.cluster.objects.lock().unwrap().remove(&key);
        self.objects
            .apply_watcher_event(&watcher::Event::Delete(obj.clone()));
    }

    fn get(&self, ns: usize, name: &str) -> Option<AuthedApi> {
        let key = (NAMESPACES[ns].to_owned(), name.to_owned());
        self.cluster.objects.lock().unwrap().get(&key).cloned()
    }

    fn live_object(&self, ns: usize) -> Option<AuthedApi> {
        if !self.live[ns] {
            return None;
        }
        self.get(ns, self.names[ns].last()?)
    }

    fn fake_of(&self, account: &str) -> &FakeAws {
        self.accounts
            .iter()
            .find(|f| f.state().account() == account)
            .expect("one of the model's accounts")
    }

    /// One reconcile of `ns/name` as the controller runs it; None when it is gone.
    fn reconcile(&mut self, ns: usize, name: &str) -> Option<Result<(), Error>> {
        let mut obj = self.get(ns, name)?;
        let ctx = self.ctx.clone();
        if annotated(&obj, PAUSED) {
            return Some(self.rt.block_on(pause(&obj, &ctx)).map(drop));
        }
        if obj.metadata.deletion_timestamp.is_some() {
            if obj.metadata.finalizers.is_none() {
                self.remove(&obj);
                return None;
            }
            let result = self.rt.block_on(cleanup(&obj, &ctx)).map(drop);
            if result.is_ok() {
                if annotated(&obj, OBSERVE_ONLY) {
                    self.retained.push(self.get(ns, name).unwrap());
                }
                self.remove(&obj);
            }
            return Some(result);
        }
        if obj.metadata.finalizers.is_none() {
            obj.metadata.finalizers = Some(vec![FINALIZER.into()]);
            self.put(obj.clone());
        }
        ctx.make_due(obj.metadata.uid.as_deref().unwrap());
        Some(self.rt.block_on(apply(&obj, &ctx)).map(drop))
    }

    /// Reconcile every object of `ns`, checking what each says.
    fn reconcile_namespace(&mut self, ns: usize) {
        for name in self.names[ns].clone() {
            let Some(result) = self.reconcile(ns, &name) else {
                continue;
            };
            let Some(obj) = self.get(ns, &name) else {
                continue;
            };
            if obj.metadata.deletion_timestamp.is_some() || annotated(&obj, PAUSED) {
                continue;
            }
            let status = obj.status.clone().unwrap_or_default();
            let generation = obj.metadata.generation.unwrap();
            if status::is_ready(&status.conditions, generation) {
                self.assert_matches(&obj);
            }
            if let Err(e) = result
                && e.stalls()
            {
                self.assert_stays_stalled(ns, &name, e.reason());
            }
        }
    }

    /// A Stalled object is still Stalled on the next reconcile with the caches caught up
    /// and no fault that heals by itself pending. (Its reason may change: a reconcile that
    /// read a cache behind a tenant change, say, stalled on AWS's AccessDenied in its
    /// account, and the next sees the namespace moved. Both are true, and need a person.)
    fn assert_stays_stalled(&mut self, ns: usize, name: &str, reason: &str) {
        for fake in &self.accounts {
            fake.state().failures.clear();
        }
        self.catch_up();
        let again = self.reconcile(ns, name).expect("still there");
        match again {
            Err(e) if e.stalls() => {}
            other => panic!(
                "{ns}/{name} was Stalled ({reason}); the next reconcile said {:?}",
                other.map_err(|e| format!("{}: {e}", e.reason()))
            ),
        }
    }

    /// Ready means AWS is as the spec says.
    fn assert_matches(&self, obj: &AuthedApi) {
        let status = obj.status.clone().unwrap();
        let name = obj.name_any();
        let account = status.account_id.clone().expect("Ready has an account");
        let s = self.fake_of(&account).state();
        let api_id = status.api_id.clone().expect("an API id");
        let api = s
            .apis
            .get(&api_id)
            .unwrap_or_else(|| panic!("{name} Ready without its API"));
        let mut keys: Vec<&str> = api.routes.iter().map(|r| r.key.as_str()).collect();
        keys.sort();
        let mut wanted: Vec<&str> = obj.spec.routes.iter().map(|r| r.route.as_str()).collect();
        wanted.sort();
        assert_eq!(keys, wanted, "{name} Ready: its routes");
        // The spec's provider in the object's account (what status names may lag in
        // observe-only mode, which records nothing).
        let issuer = crate::plan::issuer_of(&obj.spec).unwrap();
        let arn = format!("arn:aws:iam::{account}:oidc-provider/{}", issuer.name);
        let provider = s
            .providers
            .get(&arn)
            .unwrap_or_else(|| panic!("{name} Ready without its provider"));
        assert!(
            provider.client_ids.contains(&issuer.client_id),
            "{name} Ready: its client id on the provider {provider:?}"
        );
        let pool = s
            .pools
            .get(status.identity_pool_id.as_deref().unwrap())
            .unwrap_or_else(|| panic!("{name} Ready without its pool"));
        assert_eq!(pool.oidc_provider_arns, vec![arn]);
        let role = status.authenticated_role_arn.clone().unwrap();
        let role = role.rsplit('/').next().unwrap();
        assert!(s.roles.contains_key(role), "{name} Ready without its role");
        for route in &obj.spec.routes {
            if let Some(lambda) = &route.target.lambda {
                assert!(
                    s.functions[&lambda.function_arn]
                        .iter()
                        .any(|p| p.source_arn.as_deref().is_some_and(|a| a.contains(&api_id))),
                    "{name} Ready without its permission on {}",
                    lambda.function_arn
                );
            }
        }
        for authorizer in &obj.spec.authorizers {
            let function = &authorizer.lambda.function_arn;
            assert!(
                api.authorizers
                    .iter()
                    .any(|a| a.as_request().is_some_and(|r| {
                        r.name.ends_with(&authorizer.name)
                            && r.config.uri.contains(function.as_str())
                    })),
                "{name} Ready without its Lambda authorizer {}",
                authorizer.name
            );
            assert!(
                s.functions[function]
                    .iter()
                    .any(|p| p.source_arn.as_deref().is_some_and(|a| a.contains(&api_id))),
                "{name} Ready without its permission on {function}"
            );
        }
    }

    /// Nothing of anyone else's changed.
    fn assert_others_untouched(&self) {
        for fake in &self.accounts {
            let s = fake.state();
            assert!(s.roles.contains_key(FOREIGN_ROLE), "their role");
            assert!(
                s.functions[PUBLIC_FN].iter().any(|p| p.sid == FOREIGN_SID),
                "their permission"
            );
        }
        let s = self.accounts[FOREIGN_PROVIDER_ACCOUNT].state();
        let theirs = s
            .providers
            .get(&self.foreign_provider.arn)
            .expect("their provider");
        assert_eq!(
            theirs.tags, self.foreign_provider.tags,
            "their provider's tags"
        );
        assert!(theirs.client_ids.contains(&"theirs".to_owned()));
    }

    fn set_tenant(&mut self, ns: usize, mapping: Option<Mapping>) {
        let mut tenants = self.cluster.tenants.lock().unwrap();
        let name = format!("tenant-{ns}");
        tenants.retain(|t| t.metadata.name.as_deref() != Some(name.as_str()));
        if let Some(m) = &mapping {
            tenants.push(tenant_for(ns, m));
        }
        drop(tenants);
        self.mappings[ns] = mapping;
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Create(ns, spec) => {
                self.created += 1;
                let name = format!("o{}", self.created);
                let obj = object(ns, &name, &format!("uid-{}", self.created), &spec);
                self.names[ns].push(name);
                self.live[ns] = true;
                self.put(obj);
            }
            Step::Edit(ns, spec) => {
                if let Some(mut obj) = self.live_object(ns) {
                    set_spec(&mut obj, &spec);
                    obj.metadata.generation = Some(obj.metadata.generation.unwrap() + 1);
                    self.put(obj);
                }
            }
            Step::Delete(ns) => {
                if let Some(mut obj) = self.live_object(ns) {
                    obj.metadata.deletion_timestamp =
                        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                            k8s_openapi::jiff::Timestamp::now(),
                        ));
                    self.put(obj);
                }
                self.live[ns] = false;
            }
            Step::Pause(ns, on) => self.annotate(ns, PAUSED, on),
            Step::ObserveOnly(ns, on) => self.annotate(ns, OBSERVE_ONLY, on),
            Step::Reconcile(ns) => self.reconcile_namespace(ns),
            Step::Tenant(ns, mapping) => self.set_tenant(ns, mapping),
            Step::CacheCatchUp => self.catch_up(),
            Step::OutOfBand(ns, what) => self.out_of_band(ns, what),
            Step::Drift(ns, what) => self.drift(ns, what),
            Step::Fault(account, op, kind) => {
                let operation = OPERATIONS[op].name();
                let fake = &self.accounts[account];
                match kind {
                    0 => fake.fail_next(OPERATIONS[op], ErrorKind::Throttled),
                    1 => fake.fail_next(OPERATIONS[op], ErrorKind::Transient),
                    _ => {
                        fake.state().refused.insert(
                            operation,
                            AwsError {
                                kind: ErrorKind::AccessDenied,
                                service: "fake",
                                operation,
                                code: "AccessDenied".into(),
                                message: format!("not authorized to perform {operation}"),
                            },
                        );
                    }
                }
            }
            Step::FixFaults => self.fix_faults(),
            Step::Restart => self.restart(),
            Step::Crash(ns, nth) => {
                *self.cluster.crash_in.lock().unwrap() = Some(nth);
                for name in self.names[ns].clone() {
                    self.reconcile(ns, &name);
                }
                *self.cluster.crash_in.lock().unwrap() = None;
                *self.cluster.dead.lock().unwrap() = false;
                self.restart();
            }
        }
    }

    fn fix_faults(&self) {
        for fake in &self.accounts {
            let mut s = fake.state();
            s.failures.clear();
            s.refused.clear();
        }
    }

    /// Every object of `ns` gets (or loses) `key`, as a person annotating them would.
    fn annotate(&mut self, ns: usize, key: &str, on: bool) {
        for name in self.names[ns].clone() {
            if let Some(mut obj) = self.get(ns, &name) {
                let annotations = obj.metadata.annotations.get_or_insert_default();
                if on {
                    annotations.insert(key.into(), "true".into());
                } else {
                    annotations.remove(key);
                }
                self.put(obj);
            }
        }
    }

    /// The live object of `ns`'s status, and the fake of the account it names.
    fn live_account(&self, ns: usize) -> Option<(AuthedApiStatus, FakeAws)> {
        let status = self.live_object(ns)?.status?;
        let fake = self.fake_of(status.account_id.as_deref()?).clone();
        Some((status, fake))
    }

    fn out_of_band(&mut self, ns: usize, what: u8) {
        let Some((status, fake)) = self.live_account(ns) else {
            return;
        };
        let mut s = fake.state();
        match what {
            0 => {
                if let Some(id) = &status.api_id {
                    s.apis.remove(id);
                }
            }
            1 => {
                if let Some(id) = &status.identity_pool_id {
                    s.pools.remove(id);
                    s.pool_roles.remove(id);
                }
            }
            2 => {
                if let Some(arn) = &status.authenticated_role_arn {
                    let name = arn.rsplit('/').next().unwrap().to_owned();
                    s.roles.remove(&name);
                    s.role_policies.remove(&name);
                    s.boundaries.remove(&name);
                }
            }
            3 => {
                if let Some(arn) = &status.oidc_provider_arn
                    && *arn != self.foreign_provider.arn
                {
                    s.providers.remove(arn);
                }
            }
            _ => {
                for statements in s.functions.values_mut() {
                    statements.retain(|p| p.sid == FOREIGN_SID);
                }
            }
        }
    }

    fn drift(&mut self, ns: usize, what: u8) {
        let Some((status, fake)) = self.live_account(ns) else {
            return;
        };
        let mut s = fake.state();
        match what {
            0 => {
                if let Some(api) = status.api_id.as_ref().and_then(|id| s.apis.get_mut(id)) {
                    api.routes.pop();
                }
            }
            1 => {
                if let Some(arn) = &status.authenticated_role_arn
                    && let Some(policies) = s.role_policies.get_mut(arn.rsplit('/').next().unwrap())
                {
                    for document in policies.values_mut() {
                        *document = json!({"Version": "2012-10-17", "Statement": []});
                    }
                }
            }
            _ => {
                if let (Some(arn), Some(client)) =
                    (&status.oidc_provider_arn, &status.oidc_client_id)
                    && let Some(p) = s.providers.get_mut(arn)
                {
                    p.client_ids.retain(|c| c != client);
                }
            }
        }
    }

    /// Every object deleted: each delete finishes or names its blocker and the way out;
    /// then a person does what it says, and nothing of ours is left anywhere.
    fn tear_down(&mut self) {
        self.fix_faults();
        for ns in 0..2 {
            if self.live[ns] {
                // Deleted as they are, observe-only ones would keep their AWS resources.
                self.annotate(ns, OBSERVE_ONLY, false);
                self.step(Step::Delete(ns));
            }
        }
        self.catch_up();
        for ns in 0..2 {
            for name in self.names[ns].clone() {
                self.settle(ns, &name, false);
            }
        }
        // A person acts on each blocker: lifts the pause, maps the namespace back to the
        // object's account with a working role.
        for ns in 0..2 {
            for name in self.names[ns].clone() {
                let Some(obj) = self.get(ns, &name) else {
                    continue;
                };
                self.annotate(ns, PAUSED, false);
                let account = obj.status.as_ref().and_then(|s| s.account_id.clone());
                let mapping = Mapping {
                    account: TENANT_ACCOUNTS
                        .iter()
                        .position(|a| Some(*a) == account.as_deref()),
                    revoked: false,
                    allow_realm: true,
                };
                self.set_tenant(ns, Some(mapping));
                self.catch_up();
                self.settle(ns, &name, true);
            }
        }
        self.assert_nothing_left();
    }

    /// Reconcile the deleted `ns/name` until it is gone or blocked (must be gone when
    /// `must_finish`); a blocked one says what blocks it, and stays so.
    fn settle(&mut self, ns: usize, name: &str, must_finish: bool) {
        let mut last = None;
        for _ in 0..6 {
            match self.reconcile(ns, name) {
                None => return,
                Some(Ok(())) => {}
                Some(Err(e)) => last = Some(format!("{}: {e}", e.reason())),
            }
        }
        let obj = self.get(ns, name).unwrap();
        assert!(!must_finish, "{name}'s delete did not finish: {last:?}");
        let conditions = obj.status.clone().unwrap_or_default().conditions;
        if annotated(&obj, PAUSED) {
            assert!(
                status::is_paused(&conditions),
                "{name}: paused, and says so"
            );
            return;
        }
        let stalled = conditions
            .iter()
            .find(|c| c.type_ == "Stalled" && c.status == "True")
            .unwrap_or_else(|| panic!("{name}'s delete waits, Stalled: {conditions:?} ({last:?})"));
        assert!(
            ["AccountMoved", "AccountUnavailable", "NoAccount"].contains(&stalled.reason.as_str())
                && stalled.message.contains("Deleting is blocked")
                && stalled.message.contains("deletionPolicy: Retain"),
            "{name}'s delete names its blocker and the way out: {stalled:?}"
        );
    }

    fn assert_nothing_left(&self) {
        let retained_uids: BTreeSet<String> = self
            .retained
            .iter()
            .map(|o| o.metadata.uid.clone().unwrap())
            .collect();
        // What a retained object registered: the pairs status records, or its spec's.
        let retained_providers: BTreeSet<String> = self
            .retained
            .iter()
            .flat_map(|o| {
                let status = o.status.clone().unwrap_or_default();
                let planned = status.account_id.as_ref().map(|account| {
                    let issuer = crate::plan::issuer_of(&o.spec).unwrap().name;
                    format!("arn:aws:iam::{account}:oidc-provider/{issuer}")
                });
                let claims = status.oidc_claims.iter().map(|c| c.provider_arn.clone());
                let claims: Vec<String> = claims.collect();
                status
                    .oidc_provider_arn
                    .into_iter()
                    .chain(planned)
                    .chain(claims)
            })
            .collect();
        let retained_apis: BTreeSet<String> = self
            .retained
            .iter()
            .filter_map(|o| o.status.as_ref()?.api_id.clone())
            .collect();
        let kept = |tags: &BTreeMap<String, String>| {
            tags.get(crate::plan::TAG_UID)
                .is_some_and(|uid| retained_uids.contains(uid))
        };
        for fake in &self.accounts {
            let s = fake.state();
            let account = s.account();
            for api in s.apis.values() {
                assert!(
                    kept(&api.api.tags),
                    "an API left in {account}: {:?}",
                    api.api
                );
            }
            for pool in s.pools.values() {
                assert!(kept(&pool.tags), "a pool left in {account}: {pool:?}");
            }
            for role in s.roles.values() {
                assert!(
                    role.name == FOREIGN_ROLE || kept(&role.tags),
                    "a role left in {account}: {}",
                    role.name
                );
            }
            for (function, statements) in &s.functions {
                for p in statements {
                    assert!(
                        p.sid == FOREIGN_SID
                            || retained_apis.iter().any(|id| {
                                p.source_arn.as_deref().is_some_and(|a| a.contains(id))
                            }),
                        "a permission left on {function} in {account}: {p:?}"
                    );
                }
            }
            for provider in s.providers.values() {
                if provider.arn == self.foreign_provider.arn
                    || retained_providers.contains(&provider.arn)
                {
                    continue;
                }
                panic!("a provider left in {account}: {provider:?}");
            }
        }
        self.assert_others_untouched();
    }
}

struct LifecycleTest;

impl StateMachineTest for LifecycleTest {
    type SystemUnderTest = World;
    type Reference = Lifecycle;

    fn init_test(_: &Reference) -> World {
        World::new()
    }

    fn apply(mut world: World, _: &Reference, step: Step) -> World {
        world.step(step);
        world
    }

    fn check_invariants(world: &World, _: &Reference) {
        world.assert_others_untouched();
    }

    fn teardown(mut world: World, _: Reference) {
        world.tear_down();
    }
}

/// Histories per run: PROPTEST_CASES, else 2,000.
fn histories() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: histories(),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    })]

    #[test]
    fn every_history_ends_deletable_leaving_nothing(sequential 1..40 => LifecycleTest);
}
