//! Custom domains (`spec.domain`): the stages of one API on one domain at their own base
//! paths, the domain created once, kept while any object maps on it and deleted with the
//! last; a certificate AWS refuses stalls its object with AWS's message; a domain that
//! exists and is not this cluster's is never adopted or changed. Everything is read back
//! from the emulator (its ACM holds the certificates API Gateway checks).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::{Value, json};

use crate::common::{self, Fixture, apply, condition, wait_stalled};

const DOMAIN: &str = "api.example.com";

/// The stages example's object `name` on `DOMAIN` with `certificate`, at `base_path`.
async fn stage_on_domain(s: &Fixture, name: &str, certificate: &str, base_path: &str) -> Value {
    let doc = common::example_documents("authedapi-stages.yaml")
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .expect("the stage in the example");
    let mut object = common::moved_into(&s.account, &s.config, doc).await;
    object["spec"]["domain"] = json!({
        "name": DOMAIN, "certificateArn": certificate, "basePath": base_path
    });
    object["spec"]["outputs"] = json!({"configMapName": format!("{name}-outputs")});
    object
}

/// `DOMAIN` as the emulator has it.
async fn domain_in_aws(s: &Fixture) -> Option<authedapi::aws::domains::DomainName> {
    s.aws.domains.get_domain_name(DOMAIN).await.unwrap()
}

/// The base paths mapped on `DOMAIN`, and the API each maps.
async fn mappings(s: &Fixture) -> BTreeMap<String, String> {
    s.aws
        .domains
        .list_api_mappings(DOMAIN)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.key, m.api_id))
        .collect()
}

#[tokio::test]
async fn two_stages_share_one_domain_at_their_base_paths_and_it_goes_with_the_last() {
    let s = Fixture::new("op-domains", &[]).await;
    let certificate = s.account.certificate(DOMAIN, "ISSUED").await.unwrap();
    let dev = stage_on_domain(&s, "api-auth-auth0-dev", &certificate, "dev").await;
    let prod = stage_on_domain(&s, "api-auth-auth0-prod", &certificate, "prod").await;
    let dev = s.apply_ready(&dev).await;
    let prod = s.apply_ready(&prod).await;

    let domain = domain_in_aws(&s).await.expect("the domain");
    assert_eq!(domain.certificate_arn, certificate);
    assert_eq!(
        domain
            .tags
            .get("authedapi.dev/managed-by")
            .map(String::as_str),
        Some("authedapi")
    );
    assert!(
        domain
            .target
            .ends_with(".execute-api.us-east-1.amazonaws.com"),
        "{domain:?}"
    );
    assert_eq!(
        mappings(&s).await,
        BTreeMap::from([
            ("dev".to_owned(), common::api_id(&dev)),
            ("prod".to_owned(), common::api_id(&prod)),
        ])
    );
    let status = prod.status.clone().unwrap().domain.expect("status.domain");
    assert_eq!(status.url.as_deref(), Some("https://api.example.com/prod"));
    assert_eq!(
        status.target_domain_name.as_deref(),
        Some(domain.target.as_str())
    );
    assert_eq!(
        status.hosted_zone_id.as_deref(),
        Some(domain.hosted_zone_id.as_str())
    );
    let config_maps: Api<ConfigMap> = Api::namespaced(s.client.clone(), &s.namespace.name);
    let outputs = config_maps
        .get("api-auth-auth0-prod-outputs")
        .await
        .unwrap();
    let data = outputs.data.unwrap();
    assert_eq!(data["domainName"], DOMAIN);
    assert_eq!(data["domainTarget"], domain.target);
    assert_eq!(data["domainHostedZoneId"], domain.hosted_zone_id);

    s.delete("api-auth-auth0-dev").await;
    assert!(
        domain_in_aws(&s).await.is_some(),
        "prod still maps on the domain"
    );
    assert_eq!(
        mappings(&s).await,
        BTreeMap::from([("prod".to_owned(), common::api_id(&prod))])
    );
    s.delete("api-auth-auth0-prod").await;
    assert_eq!(domain_in_aws(&s).await, None, "gone with the last");
}

#[tokio::test]
async fn a_certificate_aws_refuses_stalls_with_its_message_until_one_is_issued_and_rotates_in_place()
 {
    let s = Fixture::new("op-domain-cert", &[]).await;
    let pending = s
        .account
        .certificate(DOMAIN, "PENDING_VALIDATION")
        .await
        .unwrap();
    let missing = format!(
        "arn:aws:acm:us-east-1:{}:certificate/00000000-0000-4000-8000-000000000000",
        s.account.id
    );
    for (certificate, says) in [
        (pending.as_str(), "PENDING_VALIDATION"),
        (missing.as_str(), "not found"),
    ] {
        let object = stage_on_domain(&s, "api-auth-auth0-dev", certificate, "dev").await;
        apply(&s.api, &object).await;
        let stalled = wait_for_message(&s, certificate).await;
        let (_, reason, message) = condition(&stalled, "Stalled").unwrap();
        assert_eq!(reason, "AwsRejected");
        assert!(
            message.contains("BadRequestException") && message.contains(says),
            "{message}"
        );
        assert_eq!(domain_in_aws(&s).await, None);
    }
    let issued = s.account.certificate(DOMAIN, "ISSUED").await.unwrap();
    let object = stage_on_domain(&s, "api-auth-auth0-dev", &issued, "dev").await;
    s.apply_ready(&object).await;
    let domain = domain_in_aws(&s).await.unwrap();
    assert_eq!(domain.certificate_arn, issued);

    // Rotating the certificate updates the domain in place (UpdateDomainName).
    let renewed = s.account.certificate(DOMAIN, "ISSUED").await.unwrap();
    let object = stage_on_domain(&s, "api-auth-auth0-dev", &renewed, "dev").await;
    s.apply_ready(&object).await;
    let domain = domain_in_aws(&s).await.unwrap();
    assert_eq!(
        domain.certificate_arn, renewed,
        "the domain took the new certificate"
    );
    assert_eq!(mappings(&s).await.len(), 1, "its mapping stays");
}

/// Wait until the object is Stalled with a message naming `certificate`.
async fn wait_for_message(s: &Fixture, certificate: &str) -> authedapi::api::AuthedApi {
    common::wait_for(
        &s.api,
        "api-auth-auth0-dev",
        &s.operator,
        common::READY_TIMEOUT,
        "Stalled on the certificate",
        |o| {
            condition(o, "Stalled").is_some_and(|(status, _, message)| {
                status == "True" && message.contains(certificate)
            })
        },
    )
    .await
}

#[tokio::test]
async fn a_domain_that_exists_and_is_not_ours_is_never_adopted_or_changed() {
    let s = Fixture::new("op-domain-foreign", &[]).await;
    let theirs = s.account.certificate(DOMAIN, "ISSUED").await.unwrap();
    let tags = BTreeMap::from([("team".to_owned(), "web".to_owned())]);
    let before = s
        .aws
        .domains
        .create_domain_name(DOMAIN, &theirs, &tags)
        .await
        .unwrap();
    let ours = s.account.certificate(DOMAIN, "ISSUED").await.unwrap();
    let object = stage_on_domain(&s, "api-auth-auth0-dev", &ours, "dev").await;
    apply(&s.api, &object).await;
    let stalled = wait_stalled(&s.api, "api-auth-auth0-dev", &s.operator).await;
    let (_, reason, message) = condition(&stalled, "Stalled").unwrap();
    assert_eq!(reason, "NameConflict");
    assert!(
        message.contains("was not created by this cluster's operator")
            && message.contains("choose another spec.domain.name"),
        "{message}"
    );
    let after = domain_in_aws(&s).await.unwrap();
    assert_eq!(after, before, "their domain is as they made it");
    assert!(mappings(&s).await.is_empty(), "nothing mapped on it");

    s.delete("api-auth-auth0-dev").await;
    let after = domain_in_aws(&s).await;
    assert_eq!(after, Some(before), "never deleted");
}
