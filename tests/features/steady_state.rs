//! The steady state: an unchanged object costs no AWS call between resyncs, and a resync
//! only reads — no write, not even when AWS hands back a policy spelled differently
//! (keys reordered, singleton lists, whitespace) with the same meaning.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::Fixture;

#[tokio::test]
async fn a_resync_of_an_unchanged_object_sends_no_aws_writes() {
    let s = Fixture::new("op-steady", &["--resync", "4s"]).await;
    s.seed_ready("steady").await;
    // Let the reconcile triggered by our own status write pass.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = s.operator.aws_requests(Some("write")).await;
    let reads = s.operator.aws_requests(Some("read")).await;

    // Inside the resync period an unchanged object costs no AWS call at all.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.operator.aws_requests(None).await, writes + reads);

    // A resync observes everything again, and writes nothing.
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.operator.aws_requests(Some("read")).await == reads {
        assert!(
            Instant::now() < deadline,
            "no resync within 20s:\n{}",
            s.operator.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let reads_per_resync = s.operator.aws_requests(Some("read")).await - reads;
    assert_eq!(
        s.operator.aws_requests(Some("write")).await,
        writes,
        "a resync wrote to AWS"
    );
    eprintln!("[measure] seed: {reads_per_resync} AWS reads and 0 writes per no-change resync");
}

#[tokio::test]
async fn policies_spelled_differently_by_aws_cause_no_updates() {
    let s = Fixture::through_proxy("stress-spelling", vec![], &["--resync", "2s"]).await;
    let obj = s.seed_ready("spelled").await;
    let status = obj.status.unwrap();
    let role = status
        .authenticated_role_arn
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    // Rewrite both policies with the same meaning: keys reordered, lists as singletons,
    // whitespace everywhere (IAM stores them and returns them URL-encoded). Counting
    // starts now (the test's own writes go straight to the emulator, not the proxy).
    s.proxy().reset_counts();
    let trust = s
        .aws
        .iam
        .get_role(&role)
        .await
        .unwrap()
        .unwrap()
        .trust_policy;
    let statement = &trust["Statement"][0];
    let respelled_trust: Value = serde_json::from_str(&format!(
        "{{ \"Statement\" : [ {{ \"Condition\": {cond}, \"Action\": [\"sts:AssumeRoleWithWebIdentity\"],\n \"Principal\": {principal}, \"Effect\": \"Allow\" }} ],\n \"Version\": \"2012-10-17\" }}",
        cond = statement["Condition"],
        principal = statement["Principal"],
    ))
    .unwrap();
    s.aws
        .iam
        .update_trust_policy(&role, &respelled_trust)
        .await
        .unwrap();
    let invoke = s
        .aws
        .iam
        .get_role_policy(&role, "authedapi-invoke")
        .await
        .unwrap()
        .unwrap();
    let respelled_invoke = json!({
        "Statement": {"Resource": invoke["Statement"][0]["Resource"][0], "Action": ["execute-api:Invoke"], "Effect": "Allow"},
        "Version": "2012-10-17"
    });
    s.aws
        .iam
        .put_role_policy(&role, "authedapi-invoke", &respelled_invoke)
        .await
        .unwrap();

    // Several resyncs later: no policy write at all.
    let reads_before = s.proxy().forwarded("iam", "GetRolePolicy");
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        s.proxy().forwarded("iam", "GetRolePolicy") > reads_before + 1,
        "resyncs happened"
    );
    assert_eq!(s.proxy().forwarded("iam", "UpdateAssumeRolePolicy"), 0);
    assert_eq!(s.proxy().forwarded("iam", "PutRolePolicy"), 0);
}

#[tokio::test]
async fn drift_checks_that_would_exceed_their_share_stretch_the_resync_and_say_so() {
    // API Gateway limited to 2 requests/s, drift checks to half: 1 request/s. One object's
    // drift check reads API Gateway 5 times, so checking it every 2s would need 2.5/s.
    let s = Fixture::new(
        "op-stretch",
        &[
            "--resync",
            "2s",
            "--aws-rate-limit",
            "apigateway=2:2",
            "--drift-check-share",
            "0.5",
        ],
    )
    .await;
    let obj = s.seed_ready("stretched").await;
    let account = obj.status.unwrap().account_id.unwrap();
    let metrics = s.operator.metrics().await;
    let series = format!("authedapi_resync_period_seconds{{account=\"{account}\"}} ");
    let period: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
        .parse()
        .unwrap();
    assert_eq!(period, 5.0, "1 object x 5 reads at 1 read/s");
    let log = s.operator.log_tail(200);
    assert!(
        log.contains("drift checks stretched past --resync"),
        "the stretch is logged:\n{log}"
    );
}
