//! A step AWS keeps refusing: the object it belongs to is Stalled with reason
//! `AccessDenied` and AWS's own message, Ready=False; the operator backs off instead of
//! retrying hot; objects that do not need the refused step stay Ready.

use std::time::Duration;

use authedapi_rig::fault_proxy::{Fault, Rule};
use serde_json::json;

use crate::common::{Fixture, apply, condition, wait_ready, wait_stalled};

#[tokio::test]
async fn persistent_access_denied_stalls_one_object_and_backs_off() {
    let s = Fixture::through_proxy(
        "stress-denied",
        vec![
            Rule::new(Fault::AccessDenied)
                .service("apigateway")
                .operation("CreateAuthorizer"),
        ],
        &[],
    )
    .await;
    let operator = &s.operator;
    // Only "jwt" needs an authorizer; "plain" does not.
    let mut jwt = s.seed("jwt").await;
    jwt["spec"]["routes"][0]["authorization"] = json!("jwt");
    apply(&s.api, &jwt).await;
    apply(&s.api, &s.seed("plain").await).await;

    wait_ready(&s.api, "plain", operator, Duration::from_secs(60)).await;
    let stalled = wait_stalled(&s.api, "jwt", operator).await;
    let (_, reason, message) = condition(&stalled, "Stalled").unwrap();
    assert_eq!(reason, "AccessDenied");
    assert!(
        message.contains("not authorized"),
        "the AWS message: {message}"
    );
    assert_eq!(condition(&stalled, "Ready").unwrap().0, "False");

    // Backing off: over 40 seconds, at most a few more attempts.
    let first = s
        .proxy()
        .count("apigateway", "CreateAuthorizer", "access_denied");
    tokio::time::sleep(Duration::from_secs(40)).await;
    let later = s
        .proxy()
        .count("apigateway", "CreateAuthorizer", "access_denied");
    eprintln!(
        "[measure] AccessDenied: {first} attempts at first, {} more in 40s",
        later - first
    );
    assert!(later - first <= 2, "{} attempts in 40s", later - first);
    // The other object stayed Ready.
    wait_ready(&s.api, "plain", operator, Duration::from_secs(5)).await;
}
