//! VPC links (`spec.vpcLink`) and private routes: a link of ours created AVAILABLE with our
//! tags (the account's first, so API Gateway's service-linked role comes with it), the
//! route answering through it from the private target; the link renamed, the private
//! integration pointed elsewhere and the link deleted behind the operator's back, each
//! put back within a resync; the object deleted, link and API gone. Someone else's link,
//! referenced by id, is used and never changed or deleted.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use authedapi::api::AuthedApi;
use authedapi::aws::apigateway::IntegrationTarget;
use authedapi::aws::vpc_links::VpcLink;
use serde_json::{Value, json};

use crate::common::{self, Fixture};

/// A plain-HTTP server on loopback standing in for the load balancer behind the listener:
/// it answers "private <path>" to every request.
fn private_target() -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let path = request_line.split(' ').nth(1).unwrap_or("/");
            let body = format!("private {path}");
            let _ = write!(
                reader.get_mut(),
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn listener_arn(s: &Fixture) -> String {
    format!(
        "arn:aws:elasticloadbalancing:us-east-1:{}:listener/app/orders/50dc6c495c0c9188/f2f7dc8efc522ab2",
        s.account.id
    )
}

/// The seed named `name` with a public private route `GET /orders/{id}` through `link`.
async fn with_private_route(s: &Fixture, name: &str, link: Value) -> Value {
    let mut object = s.seed(name).await;
    object["spec"]["vpcLink"] = link;
    object["spec"]["routes"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "route": "GET /orders/{id}",
            "authorization": "none",
            "target": {"private": {"listenerArn": listener_arn(s)}}
        }));
    object
}

async fn links(s: &Fixture) -> Vec<VpcLink> {
    s.aws.vpc_links.list_vpc_links().await.unwrap()
}

/// The link id of the API's private integration(s).
async fn private_links(s: &Fixture, api_id: &str) -> Vec<String> {
    s.aws
        .apigateway
        .list_integrations(api_id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|i| match i.target {
            Some(IntegrationTarget::Private {
                uri, vpc_link_id, ..
            }) if uri.contains(":listener/app/orders/") => Some(vpc_link_id),
            _ => None,
        })
        .collect()
}

/// GET `path` on the API's execute-api endpoint: (status, body).
async fn call(s: &Fixture, api_id: &str, path: &str) -> (u16, String) {
    let http = authedapi_rig::shared::web().http_client().unwrap();
    let url = format!(
        "https://{api_id}.execute-api.{}.amazonaws.com{path}",
        s.account.region
    );
    let answer = http.get(url).send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// Wait up to 20 s until `check` holds, saying `what` when it does not.
async fn eventually<F: AsyncFn() -> bool>(s: &Fixture, what: &str, check: F) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} not within 20s\n{}",
            s.operator.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn link_id(obj: &AuthedApi) -> String {
    obj.status
        .as_ref()
        .and_then(|s| s.vpc_link_id.clone())
        .expect("status.vpcLinkId")
}

#[tokio::test]
async fn a_link_of_ours_carries_the_route_is_put_back_when_changed_and_goes_with_the_object() {
    let s = Fixture::new("op-vpc-links", &["--resync", "3s"]).await;
    let object = with_private_route(
        &s,
        "orders",
        json!({"subnetIds": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"], "securityGroupIds": ["sg-0123abcd"]}),
    )
    .await;
    let obj = s.apply_ready(&object).await;
    let api_id = common::api_id(&obj);
    let [link] = &links(&s).await[..] else {
        panic!("one link: {:?}", links(&s).await)
    };
    assert_eq!(link.id, link_id(&obj));
    assert_eq!(link.status, "AVAILABLE");
    assert_eq!(link.subnet_ids, ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]);
    assert_eq!(link.security_group_ids, ["sg-0123abcd"]);
    assert_eq!(link.tags.get("authedapi.dev/uid"), Some(&common::uid(&obj)));
    assert_eq!(
        link.tags.get("authedapi.dev/cluster").map(String::as_str),
        Some("test")
    );
    assert_eq!(private_links(&s, &api_id).await, [link.id.as_str()]);
    s.account
        .private_target(&listener_arn(&s), &private_target())
        .await
        .unwrap();
    assert_eq!(
        call(&s, &api_id, "/orders/7").await,
        (200, "private /orders/7".to_owned())
    );

    // Renamed behind our back: renamed back.
    let name = link.name.clone();
    s.aws
        .vpc_links
        .rename_vpc_link(&link.id, "someone-renamed-it")
        .await
        .unwrap();
    eventually(&s, "the link renamed back", async || {
        links(&s).await.iter().any(|l| l.name == name)
    })
    .await;

    // The integration pointed at another service: the route gets one to the listener again.
    let gateway = aws_sdk_apigatewayv2::Client::new(&s.config);
    let integration = gateway
        .get_integrations()
        .api_id(&api_id)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .find(|i| i.connection_id() == Some(link.id.as_str()))
        .and_then(|i| i.integration_id().map(str::to_owned))
        .expect("the private integration");
    let elsewhere = format!(
        "arn:aws:servicediscovery:us-east-1:{}:service/srv-e4anhexample0004",
        s.account.id
    );
    gateway
        .update_integration()
        .api_id(&api_id)
        .integration_id(&integration)
        .integration_uri(&elsewhere)
        .send()
        .await
        .unwrap();
    eventually(&s, "the route back on the listener", async || {
        call(&s, &api_id, "/orders/7").await == (200, "private /orders/7".to_owned())
    })
    .await;
    assert_eq!(private_links(&s, &api_id).await, [link.id.as_str()]);

    // The link deleted behind our back: a new one, the integration moved onto it.
    s.aws.vpc_links.delete_vpc_link(&link.id).await.unwrap();
    eventually(&s, "a new link carrying the route", async || {
        let now = links(&s).await;
        now.len() == 1
            && now[0].id != link.id
            && private_links(&s, &api_id).await == [now[0].id.clone()]
            && call(&s, &api_id, "/orders/7").await.0 == 200
    })
    .await;
    let recreated = links(&s).await[0].id.clone();
    eventually(&s, "status naming the new link", async || {
        s.api
            .get("orders")
            .await
            .is_ok_and(|o| o.status.and_then(|st| st.vpc_link_id) == Some(recreated.clone()))
    })
    .await;

    s.delete("orders").await;
    assert!(links(&s).await.is_empty(), "the link went with the object");
    assert_eq!(s.aws.apigateway.get_api(&api_id).await.unwrap(), None);
}

#[tokio::test]
async fn someone_elses_link_is_used_and_never_changed_or_deleted() {
    let s = Fixture::new("op-vpc-link-ref", &[]).await;
    let theirs = s
        .aws
        .vpc_links
        .create_vpc_link(
            "network-team",
            &["subnet-0a1b2c3d".to_owned()],
            &[],
            &[("team".to_owned(), "network".to_owned())].into(),
        )
        .await
        .unwrap();
    let object = with_private_route(&s, "borrower", json!({"id": theirs.id})).await;
    let obj = s.apply_ready(&object).await;
    let api_id = common::api_id(&obj);
    assert_eq!(private_links(&s, &api_id).await, [theirs.id.as_str()]);
    assert_eq!(obj.status.unwrap().vpc_link_id, None, "not ours to record");

    s.delete("borrower").await;
    assert_eq!(links(&s).await, [theirs], "untouched");
}

#[tokio::test]
async fn a_referenced_link_that_does_not_exist_stalls_the_object() {
    let s = Fixture::new("op-vpc-link-none", &[]).await;
    let object = with_private_route(&s, "nolink", json!({"id": "nolink1"})).await;
    common::apply(&s.api, &object).await;
    let obj = common::wait_stalled(&s.api, "nolink", &s.operator).await;
    let (_, reason, message) = common::condition(&obj, "Stalled").unwrap();
    assert_eq!(reason, "InvalidSpec");
    assert!(message.contains("spec.vpcLink.id nolink1"), "{message}");
    assert!(links(&s).await.is_empty());
}
