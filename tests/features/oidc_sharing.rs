//! The OIDC provider: one IAM OIDC provider per Auth0 domain in an account, shared by
//! every object naming that domain, each adding its client id; an object lets its client
//! id go when it is deleted or its spec moves to another (even when a later step of that
//! change failed first), and the provider goes with the last user — unless someone else
//! made it, in which case it is used but never deleted, tagged or stripped.

use std::time::Duration;

use authedapi_rig::fault_proxy::{Fault, Rule};
use serde_json::{Value, json};

use crate::common::{Fixture, apply, wait_ready, wait_stalled};

/// `object` with another name and Auth0 client id.
fn with_client(object: &Value, name: &str, client_id: &str, domain: &str) -> Value {
    let mut object = object.clone();
    object["metadata"]["name"] = json!(name);
    object["spec"]["auth0"]["clientId"] = json!(client_id);
    object["spec"]["auth0"]["domain"] = json!(domain);
    object
}

#[tokio::test]
async fn one_oidc_provider_per_domain_is_shared_and_released() {
    let s = Fixture::new("op-oidc", &[]).await;
    let seed = s.seed("base").await;
    let a = s
        .apply_ready(&with_client(&seed, "a", "client-a", "shared.auth0.com"))
        .await;
    let b = s
        .apply_ready(&with_client(&seed, "b", "client-b", "shared.auth0.com"))
        .await;
    let arn = a.status.clone().unwrap().oidc_provider_arn.unwrap();
    assert_eq!(
        Some(&arn),
        b.status.as_ref().unwrap().oidc_provider_arn.as_ref()
    );
    let provider = s.aws.iam.get_oidc_provider(&arn).await.unwrap().unwrap();
    assert_eq!(provider.client_ids, vec!["client-a", "client-b"]);

    s.delete("a").await;
    let provider = s
        .aws
        .iam
        .get_oidc_provider(&arn)
        .await
        .unwrap()
        .expect("still used by b");
    assert_eq!(provider.client_ids, vec!["client-b"]);

    s.delete("b").await;
    assert_eq!(
        s.aws.iam.get_oidc_provider(&arn).await.unwrap(),
        None,
        "created by us, unused: gone"
    );
}

#[tokio::test]
async fn an_oidc_provider_we_did_not_create_is_used_but_never_deleted() {
    let s = Fixture::new("op-oidc-foreign", &[]).await;
    let arn = s
        .aws
        .iam
        .create_oidc_provider(
            "https://foreign.auth0.com",
            &["someone-else".into()],
            &Default::default(),
        )
        .await
        .unwrap();
    let seed = s.seed("base").await;
    s.apply_ready(&with_client(
        &seed,
        "a",
        "client-a",
        "https://foreign.auth0.com/",
    ))
    .await;
    s.apply_ready(&with_client(&seed, "b", "client-b", "foreign.auth0.com"))
        .await;
    let provider = s.aws.iam.get_oidc_provider(&arn).await.unwrap().unwrap();
    assert_eq!(
        provider.client_ids,
        vec!["someone-else", "client-a", "client-b"]
    );
    assert!(
        provider.tags.is_empty(),
        "a provider someone else made is not tagged at all (its tags are not ours to \
         write): {:?}",
        provider.tags
    );

    s.delete("a").await;
    s.delete("b").await;
    let provider = s
        .aws
        .iam
        .get_oidc_provider(&arn)
        .await
        .unwrap()
        .expect("never deleted");
    // Client ids are removed only from providers this cluster created: IAM cannot let the
    // operator remove its own client ids from someone else's provider without letting it
    // remove theirs too, so ours stay (harmless: no identity pool uses them any more).
    assert_eq!(
        provider.client_ids,
        vec!["someone-else", "client-a", "client-b"]
    );
    assert!(provider.tags.is_empty(), "{:?}", provider.tags);
}

#[tokio::test]
async fn a_client_id_the_spec_moves_away_from_is_released_even_after_a_failed_step() {
    let s = Fixture::through_proxy("stress-moving-client", vec![], &[]).await;
    let operator = &s.operator;
    let mut object = s.seed("moving").await;
    object["spec"]["auth0"]["domain"] = json!("moving.auth0.com");
    object["spec"]["auth0"]["clientId"] = json!("old-client");
    apply(&s.api, &object).await;
    let obj = wait_ready(&s.api, "moving", operator, Duration::from_secs(60)).await;
    let arn = obj.status.unwrap().oidc_provider_arn.unwrap();

    // The new client id goes onto the provider, then a later step fails.
    s.proxy().set_rules(vec![
        Rule::new(Fault::AccessDenied)
            .service("iam")
            .operation("GetRole"),
    ]);
    object["spec"]["auth0"]["clientId"] = json!("new-client");
    apply(&s.api, &object).await;
    wait_stalled(&s.api, "moving", operator).await;
    let provider = s.aws.iam.get_oidc_provider(&arn).await.unwrap().unwrap();
    assert_eq!(provider.client_ids, vec!["old-client", "new-client"]);

    // Once the step succeeds, the old client id is let go: status had not forgotten it.
    s.proxy().clear_rules();
    wait_ready(&s.api, "moving", operator, Duration::from_secs(90)).await;
    let provider = s.aws.iam.get_oidc_provider(&arn).await.unwrap().unwrap();
    assert_eq!(provider.client_ids, vec!["new-client"]);
}
