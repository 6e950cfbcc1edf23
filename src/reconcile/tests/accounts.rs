//! Namespaces mapped to AWS accounts by their AuthedApiTenant: resources land in the
//! tenant's account only, with its boundary and region; status says which account and
//! why; a role that cannot be assumed stalls only its tenant's objects; a namespace moved
//! to another account leaves its resources where they are.

use kube::api::ObjectMeta;

use super::*;
use crate::tenant::{AuthedApiTenant, AuthedApiTenantSpec, TenantAws};

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
