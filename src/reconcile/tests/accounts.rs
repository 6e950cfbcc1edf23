//! Namespaces mapped to AWS accounts by their AuthedApiTenant: resources land in the
//! tenant's account only, with its boundary and region; status says which account and
//! why; a role that cannot be assumed stalls only its tenant's objects; a namespace moved
//! to another account leaves its resources where they are.

use kube::api::ObjectMeta;

use super::*;
use crate::tenant::{AuthedApiTenantSpec, TenantAws};

const TEAM_ACCOUNT: &str = "210987654321";
const TEAM_ROLE: &str = "arn:aws:iam::210987654321:role/authedapi";

fn team_aws() -> TenantAws {
    TenantAws {
        role_arn: TEAM_ROLE.into(),
        external_id: Some("ext-team".into()),
        session_name: None,
        region: Some("eu-west-1".into()),
        permissions_boundary: Some("team-boundary".into()),
        rate_limits: vec!["apigateway=5:20".into()],
    }
}

fn tenant(name: &str, namespace: &str, aws: Option<TenantAws>) -> AuthedApiTenant {
    AuthedApiTenant {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: AuthedApiTenantSpec {
            namespaces: vec![namespace.into()],
            namespace_selector: None,
            allowed_functions: vec!["arn:aws:lambda:*:*:function:*".into()],
            allowed_private_targets: Vec::new(),
            allowed_issuers: None,
            aws,
        },
    }
}

/// The seed in `namespace`, without spec.region (the tenant's region applies).
fn seed_in(namespace: &str, uid: &str) -> AuthedApi {
    let mut obj = seed();
    obj.metadata.namespace = Some(namespace.into());
    obj.metadata.uid = Some(uid.into());
    obj.spec.region = None;
    obj
}

/// The team account's fake, with the seed's functions.
fn team_fake() -> FakeAws {
    let aws = FakeAws::in_account(TEAM_ACCOUNT);
    let mut s = aws.state();
    s.functions.insert(PRIVATE_FN.into(), Vec::new());
    s.functions.insert(PUBLIC_FN.into(), Vec::new());
    drop(s);
    aws
}

/// A rig whose operator also reaches `provider`'s accounts, under `tenants`.
fn with_accounts(
    provider: impl FnOnce(AwsProvider) -> AwsProvider,
    tenants: Vec<AuthedApiTenant>,
) -> Rig {
    let mut rig = Rig::new();
    let (store, mut writer) = reflector::store();
    *rig.cluster.tenants.lock().unwrap() = tenants.clone();
    for t in tenants {
        writer.apply_watcher_event(&watcher::Event::Apply(t));
    }
    let own = AwsProvider::fixed(rig.aws.clients(), ACCOUNT, Some("us-east-1"));
    let ctx = Arc::get_mut(&mut rig.ctx).expect("no one else holds the context yet");
    ctx.aws = provider(own);
    ctx.tenants = store;
    rig
}

/// A rig where the tenant team-a maps namespace team-a to the team's account (a fake).
fn team_a_mapped() -> (Rig, FakeAws) {
    let team = team_fake();
    let rig = with_accounts(
        |p| p.with_fixed(team_aws(), team.clients()),
        vec![tenant("team-a", "team-a", Some(team_aws()))],
    );
    (rig, team)
}

#[tokio::test]
async fn a_mapped_namespace_gets_its_resources_in_the_tenants_account_only() {
    let (rig, team) = team_a_mapped();
    let mut obj = seed_in("team-a", "uid-team");
    rig.reconcile(&mut obj).await.unwrap();

    assert_eq!(
        rig.aws.state().writes_total(),
        0,
        "nothing in the operator's account"
    );
    let s = team.state();
    assert_eq!(s.apis.len(), 1);
    let provider = s.providers.keys().next().unwrap();
    assert!(
        provider.starts_with(&format!("arn:aws:iam::{TEAM_ACCOUNT}:oidc-provider/")),
        "the shared OIDC provider is the team account's own: {provider}"
    );
    assert!(!s.boundaries.is_empty());
    for (role, boundary) in &s.boundaries {
        assert_eq!(
            boundary,
            &format!("arn:aws:iam::{TEAM_ACCOUNT}:policy/team-boundary"),
            "{role} carries the tenant's boundary, in its account"
        );
    }
    drop(s);
    let status = obj.status.unwrap();
    assert_eq!(status.account_id.as_deref(), Some(TEAM_ACCOUNT));
    assert_eq!(
        status.region.as_deref(),
        Some("eu-west-1"),
        "the tenant's region"
    );
    assert_eq!(
        status.account_source.as_deref(),
        Some(format!("AuthedApiTenant team-a, role {TEAM_ROLE}").as_str())
    );
    assert!(status::is_ready(&status.conditions, 1));
}

#[tokio::test]
async fn an_unmapped_namespace_uses_the_operators_account_and_says_why() {
    let (rig, team) = team_a_mapped();
    let mut obj = seed_in("other", "uid-other");
    obj.spec.region = Some("us-east-1".into());
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(
        team.state().writes_total(),
        0,
        "nothing in the team's account"
    );
    assert_eq!(rig.aws.state().apis.len(), 1);
    let status = obj.status.unwrap();
    assert_eq!(status.account_id.as_deref(), Some(ACCOUNT));
    assert_eq!(
        status.account_source.as_deref(),
        Some(
            "the operator's own account: the operator's defaults (no AuthedApiTenant selects this namespace)"
        )
    );
}

#[tokio::test]
async fn without_own_account_an_unmapped_namespace_stalls_before_any_call() {
    let mut rig = with_accounts(|p| p, vec![]);
    Arc::get_mut(&mut rig.ctx).unwrap().defaults.own_account = false;
    let mut obj = seed_in("other", "uid-other");
    obj.spec.region = Some("us-east-1".into());
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert!(matches!(e, Error::NoAccount(_)), "{e}");
    assert!(e.stalls());
    assert!(e.to_string().contains("--own-account=deny"), "{e}");
    let s = rig.aws.state();
    assert_eq!(s.writes_total() + s.reads.values().sum::<usize>(), 0);
    drop(s);
    let conditions = obj.status.unwrap().conditions;
    let stalled = conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "NoAccount")
    );
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_stalls_only_its_tenants_objects() {
    let denied = "AccessDenied: User: arn:aws:sts::123456789012:assumed-role/authedapi-operator/x \
                  is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::210987654321:role/authedapi";
    let rig = with_accounts(
        |p| p.with_refused(team_aws(), denied),
        vec![tenant("team-a", "team-a", Some(team_aws()))],
    );
    let mut blocked = seed_in("team-a", "uid-team");
    let e = rig.reconcile(&mut blocked).await.unwrap_err();
    assert!(e.stalls(), "{e}");
    assert_eq!(e.reason(), "AccountUnavailable");
    assert!(
        e.to_string().contains(denied) && e.to_string().contains("AuthedApiTenant team-a"),
        "AWS's words and the tenant: {e}"
    );

    let mut fine = seed_in("other", "uid-other");
    fine.metadata.name = Some("other".into());
    fine.spec.region = Some("us-east-1".into());
    rig.reconcile(&mut fine).await.unwrap();
    assert!(status::is_ready(&fine.status.unwrap().conditions, 1));
}

#[tokio::test]
async fn a_namespace_moved_to_another_account_leaves_its_resources_and_stalls() {
    let (rig, team) = team_a_mapped();
    // Made in the operator's account before the platform mapped team-a elsewhere.
    let mut obj = seed_in("team-a", "uid-team");
    obj.status = Some(AuthedApiStatus {
        account_id: Some(ACCOUNT.into()),
        region: Some("us-east-1".into()),
        ..Default::default()
    });
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert!(matches!(e, Error::AccountMoved { .. }), "{e}");
    assert!(e.stalls());
    let text = e.to_string();
    assert!(
        text.contains(ACCOUNT)
            && text.contains(TEAM_ACCOUNT)
            && text.contains("map the namespace back"),
        "{text}"
    );
    assert_eq!(
        team.state().writes_total(),
        0,
        "nothing made in the new account"
    );
    assert_eq!(
        rig.aws.state().writes_total(),
        0,
        "nothing changed in the old one"
    );
    // Nor is anything deleted in either account.
    assert!(rig.delete(&obj).await.is_err());
    assert_eq!(
        team.state().writes_total() + rig.aws.state().writes_total(),
        0
    );
}

#[tokio::test]
async fn deletion_happens_in_the_account_the_resources_are_in() {
    let (rig, team) = team_a_mapped();
    let mut obj = seed_in("team-a", "uid-team");
    rig.reconcile(&mut obj).await.unwrap();
    rig.delete(&obj).await.unwrap();
    let s = team.state();
    assert!(s.apis.is_empty() && s.pools.is_empty() && s.roles.is_empty());
    assert!(
        s.providers.is_empty(),
        "its last user gone, the team's provider goes too"
    );
}

const OTHER_ACCOUNT: &str = "333344445555";
const OTHER_ROLE: &str = "arn:aws:iam::333344445555:role/authedapi";

fn other_aws() -> TenantAws {
    TenantAws {
        role_arn: OTHER_ROLE.into(),
        ..team_aws()
    }
}

/// Point the rig at `tenants`, in its cache and on the API server alike.
fn retenant(rig: &mut Rig, tenants: Vec<AuthedApiTenant>) {
    let (store, mut writer) = reflector::store();
    *rig.cluster.tenants.lock().unwrap() = tenants.clone();
    for t in tenants {
        writer.apply_watcher_event(&watcher::Event::Apply(t));
    }
    Arc::get_mut(&mut rig.ctx).unwrap().tenants = store;
}

/// Stalled AccountUnavailable from the start (the tenant's role refuses the operator), it
/// never had an account, and made nothing: its delete does not wait for the role.
#[tokio::test]
async fn an_object_whose_account_was_never_reachable_is_deleted_at_once() {
    let rig = with_accounts(
        |p| p.with_refused(team_aws(), "AccessDenied: wrong external id"),
        vec![tenant("team-a", "team-a", Some(team_aws()))],
    );
    let mut obj = seed_in("team-a", "uid-team");
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "AccountUnavailable");
    rig.delete(&obj).await.unwrap();
    assert_eq!(rig.aws.state().writes_total(), 0);
}

/// Ready in the tenant's account, then the role is revoked: the delete cannot be done, and
/// its conditions say why and what to do instead of a stale reason.
#[tokio::test]
async fn a_delete_whose_account_role_is_revoked_says_so() {
    let (mut rig, _team) = team_a_mapped();
    let mut obj = seed_in("team-a", "uid-team");
    rig.reconcile(&mut obj).await.unwrap();
    let ctx = Arc::get_mut(&mut rig.ctx).unwrap();
    let placeholder = AwsProvider::fixed(FakeAws::default().clients(), ACCOUNT, None);
    let aws = std::mem::replace(&mut ctx.aws, placeholder);
    ctx.aws = aws.with_refused(team_aws(), "AccessDenied: the role's trust was changed");
    let e = rig.delete(&obj).await.unwrap_err();
    assert_eq!(e.reason(), "AccountUnavailable");
    let conditions = rig.cluster.last_status().conditions;
    let stalled = conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(stalled.reason, "AccountUnavailable");
    assert!(
        stalled.message.contains("the role's trust was changed")
            && stalled.message.contains("deletionPolicy: Retain"),
        "{}",
        stalled.message
    );
}

/// Two tenants' namespaces on one Auth0 domain and client id, each in its own account; the
/// first is moved to the second's account (AccountMoved) and back, then deleted: nothing
/// of it is left in either account. (Before, the other account's object counted as a user
/// of this account's provider, by its spec alone, and the provider kept the client id and
/// both records for good.)
#[tokio::test]
async fn a_move_and_back_then_delete_leaves_nothing_in_either_account() {
    let team = team_fake();
    let other = FakeAws::in_account(OTHER_ACCOUNT);
    {
        let mut s = other.state();
        s.functions.insert(PRIVATE_FN.into(), Vec::new());
        s.functions.insert(PUBLIC_FN.into(), Vec::new());
    }
    let home = vec![
        tenant("team-a", "team-a", Some(team_aws())),
        tenant("team-b", "team-b", Some(other_aws())),
    ];
    let mut rig = with_accounts(
        |p| {
            p.with_fixed(team_aws(), team.clients())
                .with_fixed(other_aws(), other.clients())
        },
        home.clone(),
    );
    let mut moving = seed_in("team-a", "uid-a");
    let mut staying = seed_in("team-b", "uid-b");
    staying.metadata.name = Some("staying".into());
    staying.spec.outputs = None;
    rig.reconcile(&mut moving).await.unwrap();
    rig.reconcile(&mut staying).await.unwrap();
    for o in [&moving, &staying] {
        rig.objects
            .apply_watcher_event(&watcher::Event::Apply(o.clone()));
    }

    let mut moved = home.clone();
    moved[0].spec.aws = Some(other_aws());
    retenant(&mut rig, moved);
    let e = rig.reconcile(&mut moving).await.unwrap_err();
    assert_eq!(e.reason(), "AccountMoved");
    retenant(&mut rig, home);
    rig.reconcile(&mut moving).await.unwrap();
    rig.objects
        .apply_watcher_event(&watcher::Event::Apply(moving.clone()));

    rig.delete(&moving).await.unwrap();
    let s = team.state();
    assert!(s.apis.is_empty() && s.pools.is_empty() && s.roles.is_empty());
    assert!(
        s.providers.is_empty(),
        "the team account's provider, its last user gone: {:?}",
        s.providers
    );
    drop(s);
    let o = other.state();
    assert_eq!(o.apis.len(), 1, "the other object's API stays");
    let provider = o.providers.values().next().unwrap();
    assert_eq!(provider.client_ids, vec!["client-1".to_string()]);
}

/// Found by the model (`model.rs`): the tenants cache still had a tenant mapping the
/// namespace to a role that refuses the operator, the API server no longer had it. The
/// object must not stall AccountUnavailable on the cache's word: the tenants are read
/// afresh, and it goes Ready in the operator's own account.
#[tokio::test]
async fn a_refused_role_only_the_cache_still_names_does_not_stall() {
    let rig = with_accounts(
        |p| p.with_refused(team_aws(), "AccessDenied: wrong external id"),
        vec![tenant("team-a", "team-a", Some(team_aws()))],
    );
    rig.cluster.tenants.lock().unwrap().clear();
    let mut obj = seed_in("team-a", "uid-team");
    obj.spec.region = Some("us-east-1".into());
    rig.reconcile(&mut obj).await.unwrap();
    let status = obj.status.unwrap();
    assert!(status::is_ready(&status.conditions, 1));
    assert_eq!(status.account_id.as_deref(), Some(ACCOUNT));
}

/// Found by the model: the tenants cache still mapped the namespace to the team's account,
/// the API server no longer did. A new object's first account is its account for life, so
/// it is placed by the tenants read afresh: in the operator's own account, nothing in the
/// team's.
#[tokio::test]
async fn a_new_object_is_placed_by_the_tenants_the_api_server_has() {
    let (rig, team) = team_a_mapped();
    rig.cluster.tenants.lock().unwrap().clear();
    let mut obj = seed_in("team-a", "uid-team");
    obj.spec.region = Some("us-east-1".into());
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(
        obj.status.unwrap().account_id.as_deref(),
        Some(ACCOUNT),
        "the operator's own account"
    );
    assert_eq!(team.state().writes_total(), 0, "nothing in the team's");
}
