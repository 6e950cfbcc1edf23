//! Stages: the dev and prod objects of one API (`examples/authedapi-stages.yaml`) in one
//! namespace and account get an API, an identity pool and a role each, named after their
//! stage, and share only the Auth0 tenant's OIDC provider.

use std::collections::BTreeSet;

use crate::common::{self, Fixture, apply, role_name};

#[tokio::test]
async fn dev_and_prod_of_one_api_share_nothing_but_the_provider() {
    let s = Fixture::new("op-stages", &[]).await;
    let mut objects = Vec::new();
    for doc in common::example_documents("authedapi-stages.yaml") {
        objects.push(common::moved_into(&s.account, &s.config, doc).await);
    }
    assert_eq!(objects.len(), 2);
    for object in &objects {
        apply(&s.api, object).await;
    }
    let dev = s.ready("api-auth-auth0-dev").await;
    let prod = s.ready("api-auth-auth0-prod").await;
    let (dev_status, prod_status) = (dev.status.clone().unwrap(), prod.status.clone().unwrap());
    assert_ne!(dev_status.api_id, prod_status.api_id);
    assert_ne!(dev_status.identity_pool_id, prod_status.identity_pool_id);
    assert_ne!(
        dev_status.authenticated_role_arn,
        prod_status.authenticated_role_arn
    );
    assert_eq!(dev_status.oidc_provider_arn, prod_status.oidc_provider_arn);
    assert!(role_name(&dev).starts_with("dev-"));
    assert!(role_name(&prod).starts_with("prod-"));

    let apis = s.aws.apigateway.list_apis().await.unwrap();
    assert_eq!(apis.len(), 2);
    let names: BTreeSet<_> = apis
        .iter()
        .map(|a| a.name.split('-').next().unwrap().to_owned())
        .collect();
    assert_eq!(names, BTreeSet::from(["dev".to_owned(), "prod".to_owned()]));
    let pools = s.aws.cognito.list_identity_pools().await.unwrap();
    assert_eq!(pools.len(), 2);
    assert!(
        pools.iter().any(|(_, n)| n.starts_with("dev_"))
            && pools.iter().any(|(_, n)| n.starts_with("prod_"))
    );
}
