//! Drift: changes made directly in AWS behind the operator's back — a deleted route and
//! stage, a widened invoke policy and trust policy, a detached pool role, guests let in,
//! stripped tags — are put back within one resync.

use std::time::{Duration, Instant};

use authedapi::aws::apigateway::RouteAuth;
use authedapi::aws::cognito::PoolRoles;
use serde_json::json;

use crate::common::{Fixture, apply, wait_ready};

#[tokio::test]
async fn drift_made_directly_in_aws_is_corrected_within_one_resync() {
    let s = Fixture::through_proxy("stress-drift", vec![], &["--resync", "3s"]).await;
    let operator = &s.operator;
    apply(&s.api, &s.seed("drifty").await).await;
    let obj = wait_ready(&s.api, "drifty", operator, Duration::from_secs(60)).await;
    let status = obj.status.unwrap();
    let (api_id, pool_id) = (status.api_id.unwrap(), status.identity_pool_id.unwrap());
    let role_arn = status.authenticated_role_arn.unwrap();
    let role = role_arn.rsplit('/').next().unwrap().to_owned();
    let gw = &s.aws.apigateway;
    let wanted_policy = s
        .aws
        .iam
        .get_role_policy(&role, "authedapi-invoke")
        .await
        .unwrap()
        .unwrap();

    // Someone deletes a route and the stage, widens the policy, detaches the pool's role...
    let public = gw
        .list_routes(&api_id)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.key == "GET /public")
        .unwrap();
    gw.delete_route(&api_id, &public.id).await.unwrap();
    gw.delete_stage(&api_id, "$default").await.unwrap();
    let widened = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "execute-api:Invoke", "Resource": "*"}]});
    s.aws
        .iam
        .put_role_policy(&role, "authedapi-invoke", &widened)
        .await
        .unwrap();
    s.aws
        .cognito
        .set_roles(&pool_id, &PoolRoles::default())
        .await
        .unwrap();
    // ...lets unauthenticated identities in, strips a tag of ours from the pool and the
    // role...
    let mut pool = s
        .aws
        .cognito
        .describe_identity_pool(&pool_id)
        .await
        .unwrap()
        .unwrap();
    pool.allow_unauthenticated = true;
    pool.tags.remove("authedapi.dev/stage");
    s.aws.cognito.update_identity_pool(&pool).await.unwrap();
    aws_sdk_iam::Client::new(&s.config)
        .untag_role()
        .role_name(&role)
        .tag_keys("authedapi.dev/stage")
        .send()
        .await
        .unwrap();
    // ...and widens the role's trust to every identity pool's users.
    let wanted_trust = s
        .aws
        .iam
        .get_role(&role)
        .await
        .unwrap()
        .unwrap()
        .trust_policy;
    let mut widened_trust = wanted_trust.clone();
    widened_trust["Statement"][0]["Condition"]
        .as_object_mut()
        .unwrap()
        .remove("StringEquals");
    s.aws
        .iam
        .update_trust_policy(&role, &widened_trust)
        .await
        .unwrap();
    let drifted = Instant::now();

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let routes = gw.list_routes(&api_id).await.unwrap();
        let restored = routes
            .iter()
            .any(|r| r.key == "GET /public" && r.auth == RouteAuth::None)
            && gw
                .get_stage(&api_id, "$default")
                .await
                .unwrap()
                .is_some_and(|st| st.auto_deploy)
            && s.aws
                .iam
                .get_role_policy(&role, "authedapi-invoke")
                .await
                .unwrap()
                .is_some_and(|p| authedapi::policy::equivalent(&p, &wanted_policy))
            && s.aws
                .cognito
                .get_roles(&pool_id)
                .await
                .unwrap()
                .authenticated
                .as_deref()
                == Some(role_arn.as_str())
            && s.aws
                .cognito
                .describe_identity_pool(&pool_id)
                .await
                .unwrap()
                .is_some_and(|p| {
                    !p.allow_unauthenticated && p.tags.contains_key("authedapi.dev/stage")
                })
            && s.aws.iam.get_role(&role).await.unwrap().is_some_and(|r| {
                r.tags.contains_key("authedapi.dev/stage")
                    && authedapi::policy::equivalent(&r.trust_policy, &wanted_trust)
            });
        if restored {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "drift not corrected in 20s:\n{}",
            operator.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!(
        "[measure] drift corrected {:?} after it was made (resync 3s)",
        drifted.elapsed()
    );
}
