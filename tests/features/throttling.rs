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
