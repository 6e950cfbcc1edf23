//! The rig's IAM judge itself: a request the principal's policy allows reaches the
//! emulator; one it does not is refused as AWS refuses it in that service's wire protocol
//! (code, HTTP status, message); bad credentials are refused before any policy is read;
//! each decision is recorded with the statement that granted it; and a denial reaches the
//! operator, which reports it as `Stalled` with AWS's message (the judge is no no-op).

mod common;

use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi_rig::operator_identity::PolicyOptions;
use authedapi_rig::{Credentials, OperatorIdentity, TestNamespace, shared};
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;
use kube::api::Api;

use common::{Operator, apply, install_crd, seed_in, wait_for};

fn operator_binary() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_authedapi"))
}

/// (code, HTTP status, message) of a refused SDK call.
fn refusal<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: SdkError<E, aws_smithy_runtime_api::http::Response<R>>,
) -> (String, u16, String) {
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let code = e.code().unwrap_or_default().to_owned();
    let message = e.message().unwrap_or_default().to_owned();
    (code, status, message)
}

#[tokio::test]
async fn allowed_requests_pass_and_refusals_come_in_each_services_protocol() {
    let account = shared::account();
    let identity = OperatorIdentity::provision(
        &account,
        operator_binary(),
        "test",
        &PolicyOptions::default(),
    )
    .await
    .unwrap();
    let config = account.sdk_config_as(&identity.credentials).await;
    let principal = format!(
        "arn:aws:sts::{}:assumed-role/authedapi-operator-test/authedapi-operator",
        account.id
    );

    // Allowed: reading roles by name (FindRolesByName) reaches the emulator, which answers
    // that there is none.
    let iam = aws_sdk_iam::Client::new(&config);
    let e = iam.get_role().role_name("nobody").send().await.unwrap_err();
    assert_eq!(e.code(), Some("NoSuchEntity"), "{e:?}");

    // Refused, in each protocol. IAM (awsQuery XML): 403 AccessDenied.
    let (code, status, message) = refusal(iam.list_users().send().await.unwrap_err());
    assert_eq!((code.as_str(), status), ("AccessDenied", 403));
    assert_eq!(
        message,
        format!(
            "User: {principal} is not authorized to perform: iam:ListUsers because no \
             identity-based policy allows the iam:ListUsers action"
        )
    );
    // API Gateway (restJson): 403 AccessDeniedException.
    let gw = aws_sdk_apigatewayv2::Client::new(&config);
    let (code, status, message) = refusal(
        gw.create_api()
            .name("untagged")
            .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!((code.as_str(), status), ("AccessDeniedException", 403));
    assert!(
        message.ends_with(
            "is not authorized to perform: apigateway:POST on resource: \
             arn:aws:apigateway:us-east-1::/apis because no identity-based policy allows the \
             apigateway:POST action"
        ),
        "{message}"
    );
    // Cognito Identity (awsJson1.1): 400 AccessDeniedException.
    let pools = aws_sdk_cognitoidentity::Client::new(&config);
    let (code, status, _) = refusal(
        pools
            .create_identity_pool()
            .identity_pool_name("untagged")
            .allow_unauthenticated_identities(false)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!((code.as_str(), status), ("AccessDeniedException", 400));
    // Lambda (restJson, its own error shape): 403 AccessDeniedException.
    let lambda = aws_sdk_lambda::Client::new(&config);
    let (code, status, message) = refusal(
        lambda
            .create_function()
            .function_name("mine")
            .role(format!("arn:aws:iam::{}:role/x", account.id))
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code.as_str(), status),
        ("AccessDeniedException", 403),
        "{message}"
    );
    // STS (awsQuery XML): assuming a role the policy does not grant.
    let sts = aws_sdk_sts::Client::new(&config);
    let (code, status, _) = refusal(
        sts.assume_role()
            .role_arn(format!("arn:aws:iam::{}:role/admin", account.id))
            .role_session_name("escalate")
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!((code.as_str(), status), ("AccessDenied", 403));

    // Each decision is recorded, with the statement that granted it.
    let decisions = shared::emulator().judge.decisions();
    let granted = decisions
        .iter()
        .find(|d| d.principal == principal && d.operation == "iam:GetRole")
        .expect("the GetRole decision is recorded");
    assert_eq!(granted.decision, "Allowed");
    assert_eq!(granted.checks[0].grants[0].sid, "FindRolesByName");
    let refused = decisions
        .iter()
        .find(|d| d.principal == principal && d.operation == "iam:ListUsers")
        .expect("the ListUsers decision is recorded");
    assert_eq!(refused.decision, "ImplicitlyDenied");
    assert!(refused.checks[0].grants.is_empty());
}

#[tokio::test]
async fn bad_credentials_are_refused_before_any_policy_is_read() {
    let account = shared::account();
    let identity = OperatorIdentity::provision(
        &account,
        operator_binary(),
        "test",
        &PolicyOptions::default(),
    )
    .await
    .unwrap();
    let wrong_secret = Credentials {
        secret_access_key: "not-the-secret".into(),
        ..identity.credentials.clone()
    };
    let iam = aws_sdk_iam::Client::new(&account.sdk_config_as(&wrong_secret).await);
    let (code, status, _) = refusal(iam.get_role().role_name("x").send().await.unwrap_err());
    assert_eq!((code.as_str(), status), ("SignatureDoesNotMatch", 403));

    let wrong_token = Credentials {
        session_token: Some("not-the-token".into()),
        ..identity.credentials.clone()
    };
    let iam = aws_sdk_iam::Client::new(&account.sdk_config_as(&wrong_token).await);
    let (code, status, _) = refusal(iam.get_role().role_name("x").send().await.unwrap_err());
    assert_eq!((code.as_str(), status), ("InvalidClientTokenId", 403));

    let unknown = Credentials {
        access_key_id: "ASIAUNKNOWNKEY000000".into(),
        secret_access_key: "x".into(),
        session_token: Some("y".into()),
    };
    let gw = aws_sdk_apigatewayv2::Client::new(&account.sdk_config_as(&unknown).await);
    let (code, status, _) = refusal(gw.get_apis().send().await.unwrap_err());
    assert_eq!((code.as_str(), status), ("InvalidClientTokenId", 403));
}

#[tokio::test]
async fn a_denial_reaches_the_operator_as_stalled_with_awss_message() {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, "judge-stalls")
        .await
        .unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    // The operator's policy is rendered for another issuer than the one the seed names,
    // so IAM refuses the seed's OIDC provider (the operator's own defaults allow it).
    let identity = OperatorIdentity::provision(
        &account,
        operator_binary(),
        "test",
        &PolicyOptions {
            args: vec!["--allowed-issuer".into(), "login.example.com".into()],
        },
    )
    .await
    .unwrap();
    let operator = Operator::start_as(&ns.name, &account, &identity.credentials, &[], &[]);
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);
    apply(&api, &seed_in(&account, &config, "refused").await).await;
    let obj = wait_for(
        &api,
        "refused",
        &operator,
        Duration::from_secs(60),
        "Stalled",
        |o| {
            o.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "Stalled" && c.status == "True" && c.reason == "AccessDenied"
                })
            })
        },
    )
    .await;
    let stalled = obj
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert!(
        stalled.message.contains(&format!(
            "is not authorized to perform: iam:GetOpenIDConnectProvider on resource: \
             arn:aws:iam::{}:oidc-provider/myorg.us.auth0.com",
            account.id
        )),
        "{}",
        stalled.message
    );
}
