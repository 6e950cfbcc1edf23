//! The emulator's HTTP API VPC links and private integrations, driven with the AWS SDK
//! alone: a link is created AVAILABLE with its tags, read, renamed, tagged, deleted (then
//! NotFound); an integration through it to an ALB/NLB listener or a Cloud Map service is
//! read back as created, and one AWS would refuse is refused; the data plane forwards
//! through the link to the URL standing in for the private target. The IAM judge sees
//! each call as apigateway:<verb> on arn:aws:apigateway:<region>::/vpclinks[/<id>], and
//! an account's first link also as iam:CreateServiceLinkedRole (API Gateway's role).

mod common;

use std::convert::Infallible;
use std::net::Ipv4Addr;

use authedapi_rig::{Credentials, shared};
use aws_sdk_apigatewayv2::error::ProvideErrorMetadata;
use aws_sdk_apigatewayv2::types::{ConnectionType, IntegrationType};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

/// A plain-HTTP server on loopback standing in for a private load balancer: it answers
/// "private <path>" to every request.
async fn private_target() -> String {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|request: http::Request<_>| async move {
                    let body = format!("private {}", request.uri().path());
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    url
}

fn listener_arn(account: &authedapi_rig::Account) -> String {
    format!(
        "arn:aws:elasticloadbalancing:{}:{}:listener/app/private-alb/50dc6c495c0c9188/f2f7dc8efc522ab2",
        account.region, account.id
    )
}

#[tokio::test]
async fn vpc_links_are_created_read_tagged_and_deleted() {
    let account = shared::account();
    let config = account.sdk_config().await;
    let gateway = aws_sdk_apigatewayv2::Client::new(&config);

    let created = gateway
        .create_vpc_link()
        .name("private")
        .subnet_ids("subnet-0a1b2c3d")
        .subnet_ids("subnet-4e5f6a7b")
        .security_group_ids("sg-0123abcd")
        .tags("authedapi.dev/uid", "u-1")
        .send()
        .await
        .unwrap();
    let id = created.vpc_link_id.clone().unwrap();
    assert_eq!(
        created.vpc_link_status.as_ref().map(|s| s.as_str()),
        Some("AVAILABLE")
    );
    let read = gateway
        .get_vpc_link()
        .vpc_link_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(read.name.as_deref(), Some("private"));
    assert_eq!(read.subnet_ids(), ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]);
    assert_eq!(read.security_group_ids(), ["sg-0123abcd"]);
    assert_eq!(
        read.tags
            .unwrap_or_default()
            .get("authedapi.dev/uid")
            .map(String::as_str),
        Some("u-1")
    );
    let listed = gateway.get_vpc_links().send().await.unwrap();
    assert_eq!(
        listed
            .items()
            .iter()
            .filter_map(|l| l.vpc_link_id.as_deref())
            .collect::<Vec<_>>(),
        [id.as_str()]
    );

    let renamed = gateway
        .update_vpc_link()
        .vpc_link_id(&id)
        .name("renamed")
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.name.as_deref(), Some("renamed"));

    let arn = format!("arn:aws:apigateway:{}::/vpclinks/{id}", account.region);
    gateway
        .tag_resource()
        .resource_arn(&arn)
        .tags("team", "payments")
        .send()
        .await
        .unwrap();
    gateway
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("authedapi.dev/uid")
        .send()
        .await
        .unwrap();
    let tags = gateway
        .get_tags()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default();
    assert_eq!(tags.len(), 1, "{tags:?}");
    assert_eq!(tags.get("team").map(String::as_str), Some("payments"));

    // A link needs subnets.
    let refused = gateway.create_vpc_link().name("no-subnets").send().await;
    assert_eq!(refused.unwrap_err().code(), Some("BadRequestException"));

    gateway
        .delete_vpc_link()
        .vpc_link_id(&id)
        .send()
        .await
        .unwrap();
    let gone = gateway
        .get_vpc_link()
        .vpc_link_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Some("NotFoundException"));
    let again = gateway
        .delete_vpc_link()
        .vpc_link_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some("NotFoundException"));
    assert!(
        gateway
            .get_vpc_links()
            .send()
            .await
            .unwrap()
            .items()
            .is_empty()
    );
}

#[tokio::test]
async fn vpc_link_integrations_round_trip_and_reach_the_private_target() {
    let account = shared::account();
    let config = account.sdk_config().await;
    let gateway = aws_sdk_apigatewayv2::Client::new(&config);
    let link = gateway
        .create_vpc_link()
        .name("private")
        .subnet_ids("subnet-0a1b2c3d")
        .send()
        .await
        .unwrap()
        .vpc_link_id
        .unwrap();
    let api_id = common::http_api(&gateway, "private").await;
    let listener = listener_arn(&account);
    let service = format!(
        "arn:aws:servicediscovery:{}:{}:service/srv-e4anhexample0004",
        account.region, account.id
    );
    let private = |uri: &str, connection: &str| {
        gateway
            .create_integration()
            .api_id(&api_id)
            .integration_type(IntegrationType::HttpProxy)
            .integration_method("ANY")
            .connection_type(ConnectionType::VpcLink)
            .connection_id(connection)
            .integration_uri(uri)
            .payload_format_version("1.0")
            .send()
    };
    let to_listener = private(&listener, &link).await.unwrap();
    let to_service = private(&service, &link).await.unwrap();
    for (created, uri) in [(&to_listener, &listener), (&to_service, &service)] {
        let read = gateway
            .get_integration()
            .api_id(&api_id)
            .integration_id(created.integration_id.as_deref().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(read.connection_type, Some(ConnectionType::VpcLink));
        assert_eq!(read.connection_id.as_deref(), Some(link.as_str()));
        assert_eq!(read.integration_uri.as_deref(), Some(uri.as_str()));
        assert_eq!(read.integration_type, Some(IntegrationType::HttpProxy));
    }
    // Refused as AWS refuses them: a link the account lacks, a URI that is no listener
    // or service, a connection id on an INTERNET integration.
    assert_eq!(
        private(&listener, "nolink1").await.unwrap_err().code(),
        Some("BadRequestException")
    );
    assert_eq!(
        private("https://internal.example.com", &link)
            .await
            .unwrap_err()
            .code(),
        Some("BadRequestException")
    );
    let internet = gateway
        .create_integration()
        .api_id(&api_id)
        .integration_type(IntegrationType::HttpProxy)
        .integration_method("ANY")
        .connection_id(&link)
        .integration_uri("https://example.com")
        .payload_format_version("1.0")
        .send()
        .await;
    assert_eq!(internet.unwrap_err().code(), Some("BadRequestException"));

    // The data plane: through the link to whatever stands in for the listener.
    gateway
        .create_route()
        .api_id(&api_id)
        .route_key("GET /orders/{id}")
        .target(format!(
            "integrations/{}",
            to_listener.integration_id.as_deref().unwrap()
        ))
        .send()
        .await
        .unwrap();
    let http = shared::web().http_client().unwrap();
    let url = format!(
        "https://{api_id}.execute-api.{}.amazonaws.com/orders/7",
        account.region
    );
    let get = |url: String| {
        let http = http.clone();
        async move {
            let answer = http.get(url).send().await.unwrap();
            (answer.status().as_u16(), answer.text().await.unwrap())
        }
    };
    assert_eq!(
        get(url.clone()).await,
        (503, r#"{"message":"Service Unavailable"}"#.to_owned()),
        "no target behind the listener yet"
    );
    account
        .private_target(&listener, &private_target().await)
        .await
        .unwrap();
    assert_eq!(
        get(url.clone()).await,
        (200, "private /orders/7".to_owned())
    );
    gateway
        .delete_vpc_link()
        .vpc_link_id(&link)
        .send()
        .await
        .unwrap();
    assert_eq!(get(url).await.0, 500, "the link is gone");
}

#[tokio::test]
async fn the_judge_sees_vpc_link_calls_on_their_arns() {
    let account = shared::account();
    let admin = account.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&admin);
    let region = &account.region;
    // May create tagged links and read them, nothing else.
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "apigateway:POST",
             "Resource": format!("arn:aws:apigateway:{region}::/vpclinks"),
             "Condition": {"StringEquals": {"aws:RequestTag/team": "payments"}}},
            {"Effect": "Allow", "Action": "apigateway:GET",
             "Resource": format!("arn:aws:apigateway:{region}::/vpclinks/*")}
        ]
    });
    iam.create_user().user_name("links").send().await.unwrap();
    let put_policy = |policy: serde_json::Value| {
        iam.put_user_policy()
            .user_name("links")
            .policy_name("links")
            .policy_document(policy.to_string())
            .send()
    };
    put_policy(policy.clone()).await.unwrap();
    let key = iam
        .create_access_key()
        .user_name("links")
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    let user = account
        .sdk_config_as(&Credentials {
            access_key_id: key.access_key_id,
            secret_access_key: key.secret_access_key,
            session_token: None,
        })
        .await;
    let gateway = aws_sdk_apigatewayv2::Client::new(&user);
    let tagged = || {
        gateway
            .create_vpc_link()
            .name("tagged")
            .subnet_ids("subnet-0a1b2c3d")
            .tags("team", "payments")
            .send()
    };

    let untagged = gateway
        .create_vpc_link()
        .name("untagged")
        .subnet_ids("subnet-0a1b2c3d")
        .send()
        .await
        .unwrap_err();
    assert_eq!(untagged.code(), Some("AccessDeniedException"));
    assert!(
        untagged.message().unwrap_or_default().contains(&format!(
            "apigateway:POST on resource: arn:aws:apigateway:{region}::/vpclinks "
        )),
        "{untagged:?}"
    );
    // The account's first link: API Gateway creates its service-linked role as the caller.
    let slr = format!(
        "arn:aws:iam::{}:role/aws-service-role/ops.apigateway.amazonaws.com/AWSServiceRoleForAPIGateway",
        account.id
    );
    let first = tagged().await.unwrap_err();
    assert_eq!(first.code(), Some("AccessDeniedException"));
    assert!(
        first
            .message()
            .unwrap_or_default()
            .contains(&format!("iam:CreateServiceLinkedRole on resource: {slr}")),
        "{first:?}"
    );
    let mut with_role = policy.clone();
    with_role["Statement"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "Effect": "Allow", "Action": "iam:CreateServiceLinkedRole", "Resource": slr,
            "Condition": {"StringEquals": {"iam:AWSServiceName": "ops.apigateway.amazonaws.com"}}
        }));
    put_policy(with_role).await.unwrap();
    let id = tagged().await.unwrap().vpc_link_id.unwrap();
    let role = iam
        .get_role()
        .role_name("AWSServiceRoleForAPIGateway")
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    assert_eq!(role.arn, slr);
    // Once the role exists, a link needs no more than the apigateway verb.
    put_policy(policy).await.unwrap();
    tagged().await.unwrap();
    gateway
        .get_vpc_link()
        .vpc_link_id(&id)
        .send()
        .await
        .unwrap();
    let delete = gateway
        .delete_vpc_link()
        .vpc_link_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(delete.code(), Some("AccessDeniedException"));
    assert!(
        delete.message().unwrap_or_default().contains(&format!(
            "apigateway:DELETE on resource: arn:aws:apigateway:{region}::/vpclinks/{id}"
        )),
        "{delete:?}"
    );
}
