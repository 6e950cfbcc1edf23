//! AWS throttling: with half of all AWS requests answered `TooManyRequestsException`,
//! twenty objects applied at once all become Ready, none is ever Stalled, nothing is
//! created twice, and the requests stay within a bound of the fault-free count.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use authedapi_rig::fault_proxy::{Fault, Rule};

use crate::common::{self, Fixture, apply, condition};

#[tokio::test]
async fn twenty_objects_converge_with_half_of_all_requests_throttled() {
    let s = Fixture::through_proxy(
        "stress-throttle",
        vec![Rule::new(Fault::Throttle).rate(0.5)],
        &[],
    )
    .await;
    let operator = &s.operator;
    let names: Vec<String> = (0..20).map(|i| format!("api-{i}")).collect();
    for name in &names {
        apply(&s.api, &s.seed(name).await).await;
    }

    // Watch every object until all are Ready; none may ever be Stalled.
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut ready = BTreeSet::new();
    while ready.len() < names.len() {
        for name in &names {
            let obj = s.api.get(name).await.unwrap();
            if let Some((status, reason, message)) = condition(&obj, "Stalled") {
                assert_ne!(
                    status, "True",
                    "{name} stalled under throttling: {reason}: {message}"
                );
            }
            let generation = obj.metadata.generation.unwrap_or_default();
            let conditions = obj
                .status
                .as_ref()
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default();
            if authedapi::status::is_ready(conditions, generation) {
                ready.insert(name.clone());
            }
        }
        assert!(
            Instant::now() < deadline,
            "only {} of 20 Ready after 240s:\n{}",
            ready.len(),
            operator.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Nothing duplicated.
    assert_eq!(s.aws.apigateway.list_apis().await.unwrap().len(), 20);
    assert_eq!(s.aws.cognito.list_identity_pools().await.unwrap().len(), 20);
    for (name, permissions) in common::seed_permissions(&s.aws, &s.account).await {
        assert_eq!(permissions.len(), 20, "one statement per object on {name}");
    }

    // Bounded: the seed needs 26 requests when nothing fails; with half of all attempts
    // throttled each call takes 2 attempts on average, and a reconcile cut short starts
    // over. The bound: 4x the fault-free total.
    let total = s.proxy().total();
    let throttled = s.proxy().outcome_total("throttle");
    eprintln!(
        "[measure] 20 objects, 50% throttled: {total} requests ({throttled} throttled), {:.1} per object",
        total as f64 / 20.0
    );
    assert!(total <= 20 * 26 * 4, "{total} requests for 20 objects");
}

/// Fault rules and the proxy's counts name operations from the proxy's own table
/// (method and path for the REST services): it must name each one as the SDK does, or a
/// rule would miss its call. The operator's metrics carry the SDK's names (its
/// interceptor reads the operation's metadata); for every request both sides count, the
/// names and the numbers agree.
#[tokio::test]
async fn the_fault_proxy_names_every_operation_as_the_sdk_does() {
    let s = Fixture::through_proxy("throttle-names", Vec::new(), &[]).await;
    s.seed_ready("named").await;
    let mut from_proxy = std::collections::BTreeMap::<String, u64>::new();
    for ((_, operation, _), n) in s.proxy().counts() {
        *from_proxy.entry(operation).or_default() += n;
    }
    let metrics = s.operator.metrics().await;
    let mut from_sdk = std::collections::BTreeMap::<String, u64>::new();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("authedapi_aws_requests_total{"))
    {
        let operation = line
            .split("operation=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("an operation label");
        let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        *from_sdk.entry(operation.to_owned()).or_default() += n as u64;
    }
    assert!(from_sdk.len() >= 10, "{from_sdk:?}");
    assert_eq!(from_proxy, from_sdk);
}
