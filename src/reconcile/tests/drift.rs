//! Changes made in AWS behind the operator's back, corrected field by field (API Gateway tags reported).

use super::*;

/// Change AWS behind the operator's back with `drift`, reconcile, expect exactly the
/// write `fix`.
async fn drift_is_corrected(drift: impl FnOnce(&mut crate::aws::fake::State, &str), fix: &[&str]) {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let api_id = rig.api_id();
    drift(&mut rig.aws.state(), &api_id);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(names(&rig.writes()), fix.to_vec());
    assert!(status::is_ready(&obj.status.unwrap().conditions, 1));
}

#[tokio::test]
async fn a_route_deleted_behind_our_back_is_created_again() {
    drift_is_corrected(
        |s, api| {
            s.api(api)
                .unwrap()
                .routes
                .retain(|r| r.key != "GET /public");
        },
        &["CreateRoute"],
    )
    .await;
}

#[tokio::test]
async fn a_route_with_another_authorization_is_updated() {
    drift_is_corrected(
        |s, api| {
            let route = s
                .api(api)
                .unwrap()
                .routes
                .iter_mut()
                .find(|r| r.key == "GET /private")
                .unwrap();
            route.auth = crate::aws::apigateway::RouteAuth::None;
        },
        &["UpdateRoute"],
    )
    .await;
}

#[tokio::test]
async fn a_route_someone_added_is_deleted() {
    drift_is_corrected(
        |s, api| {
            let api = s.api(api).unwrap();
            let mut extra = api.routes[0].clone();
            extra.id = "extra".into();
            extra.key = "DELETE /everything".into();
            api.routes.push(extra);
        },
        &["DeleteRoute"],
    )
    .await;
}

#[tokio::test]
async fn an_integration_no_route_uses_is_deleted() {
    drift_is_corrected(
        |s, api| {
            s.api(api)
                .unwrap()
                .integrations
                .push(crate::aws::apigateway::Integration {
                    id: "stray".into(),
                    target: None,
                });
        },
        &["DeleteIntegration"],
    )
    .await;
}

#[tokio::test]
async fn an_authorizer_with_another_issuer_is_updated() {
    drift_is_corrected(
        |s, api| {
            if let crate::aws::apigateway::Authorizer::Jwt(jwt) =
                &mut s.api(api).unwrap().authorizers[0]
            {
                jwt.issuer = "https://evil.example/".into();
            }
        },
        &["UpdateAuthorizer"],
    )
    .await;
}

#[tokio::test]
async fn stage_settings_changed_behind_our_back_are_restored() {
    drift_is_corrected(
        |s, api| {
            s.api(api).unwrap().stage.as_mut().unwrap().auto_deploy = false;
        },
        &["UpdateStage"],
    )
    .await;
}

#[tokio::test]
async fn cors_changed_behind_our_back_is_restored() {
    drift_is_corrected(
        |s, api| {
            s.api(api).unwrap().api.cors = Some(Default::default());
        },
        &["UpdateApi"],
    )
    .await;
}

#[tokio::test]
async fn a_removed_lambda_permission_is_added_again() {
    drift_is_corrected(
        |s, _| {
            s.functions.get_mut(PUBLIC_FN).unwrap().clear();
        },
        &["AddPermission"],
    )
    .await;
}

#[tokio::test]
async fn a_lambda_permission_for_another_source_is_replaced() {
    drift_is_corrected(
        |s, _| {
            s.functions.get_mut(PUBLIC_FN).unwrap()[0].source_arn =
                Some("arn:aws:execute-api:us-east-1:1:other/*".into());
        },
        &["AddPermission", "RemovePermission"],
    )
    .await;
}

#[tokio::test]
async fn an_identity_pool_opened_to_guests_is_closed_again() {
    drift_is_corrected(
        |s, _| {
            s.pools.values_mut().next().unwrap().allow_unauthenticated = true;
        },
        &["UpdateIdentityPool"],
    )
    .await;
}

#[tokio::test]
async fn an_identity_pool_that_lost_our_tags_gets_them_back() {
    drift_is_corrected(
        |s, _| {
            s.pools
                .values_mut()
                .next()
                .unwrap()
                .tags
                .remove("authedapi.dev/owner");
        },
        &["UpdateIdentityPool"],
    )
    .await;
}

#[tokio::test]
async fn a_widened_trust_policy_is_restored() {
    drift_is_corrected(
        |s, _| {
            let role = s.roles.values_mut().next().unwrap();
            role.trust_policy = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]});
        },
        &["UpdateAssumeRolePolicy"],
    )
    .await;
}

#[tokio::test]
async fn a_role_that_lost_a_tag_gets_it_back() {
    drift_is_corrected(
        |s, _| {
            s.roles
                .values_mut()
                .next()
                .unwrap()
                .tags
                .remove("authedapi.dev/owner");
        },
        &["TagRole"],
    )
    .await;
}

#[tokio::test]
async fn a_widened_invoke_policy_is_restored() {
    drift_is_corrected(
        |s, _| {
            let policies = s.role_policies.values_mut().next().unwrap();
            let document = policies.values_mut().next().unwrap();
            document["Statement"][0]["Resource"] = json!("*");
        },
        &["PutRolePolicy"],
    )
    .await;
}

#[tokio::test]
async fn pool_roles_changed_behind_our_back_are_set_again() {
    drift_is_corrected(
        |s, _| {
            s.pool_roles.values_mut().next().unwrap().unauthenticated =
                Some("arn:aws:iam::1:role/open".into());
        },
        &["SetIdentityPoolRoles"],
    )
    .await;
}

#[tokio::test]
async fn a_client_id_removed_from_the_provider_is_added_again() {
    drift_is_corrected(
        |s, _| {
            s.providers.values_mut().next().unwrap().client_ids.clear();
        },
        &["AddClientIDToOpenIDConnectProvider"],
    )
    .await;
}

#[tokio::test]
async fn a_stale_outputs_config_map_is_rewritten() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    rig.cluster
        .config_maps
        .lock()
        .unwrap()
        .get_mut("seed-outputs")
        .unwrap()
        .data = Some(BTreeMap::new());
    rig.reconcile(&mut obj).await.unwrap();
    let events = rig.cluster.events();
    assert!(
        events
            .iter()
            .any(|e| e.reason == "Updated" && e.action == "WriteOutputs"),
        "{events:?}"
    );
    assert!(
        rig.cluster.config_maps.lock().unwrap()["seed-outputs"]
            .data
            .as_ref()
            .unwrap()
            .contains_key("endpoint")
    );
}

/// API Gateway tags cannot be corrected (see `TagUpkeep::Reported`): drift is a
/// Warning, and no write.
#[tokio::test]
async fn api_and_stage_tag_drift_is_reported_not_corrected() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let id = rig.api_id();
    {
        let mut s = rig.aws.state();
        let api = s.api(&id).unwrap();
        api.api.tags.remove("authedapi.dev/owner");
        api.stage.as_mut().unwrap().tags.clear();
    }
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.writes(), BTreeMap::new());
    let warnings: Vec<Published> = rig
        .cluster
        .events()
        .into_iter()
        .filter(|e| e.warning)
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .all(|w| w.reason == "TagsDrifted" && w.action == "TagResource")
    );
    assert!(warnings[0].note.contains(&format!("HTTP API {id}")));
    assert!(warnings[1].note.contains("$default stage"));
    assert!(
        warnings[1]
            .note
            .contains(&format!("/apis/{id}/stages/$default"))
    );
}

#[tokio::test]
async fn after_a_restart_ready_objects_are_checked_for_drift_spread_over_the_resync() {
    let rig = Rig::new();
    let mut objects = Vec::new();
    for i in 0..20 {
        let mut obj = seed();
        obj.metadata.name = Some(format!("seed-{i}"));
        obj.metadata.uid = Some(format!("uid-{i}"));
        obj.spec.outputs = None;
        rig.ready(&mut obj).await;
        objects.push(obj);
    }
    // A new process: it remembers nothing; every object is Ready at its generation.
    let mut waits = Vec::new();
    for obj in &objects {
        rig.ctx.forget(obj.metadata.uid.as_deref().unwrap());
        let requeue = apply(obj, &rig.ctx).await.unwrap();
        waits.push(requeue);
    }
    let calls = {
        let s = rig.aws.state();
        s.reads.values().sum::<usize>() + s.writes_total()
    };
    assert_eq!(calls, 0, "no object is checked at once");
    let distinct: std::collections::BTreeSet<String> =
        waits.iter().map(|w| format!("{w:?}")).collect();
    assert!(
        distinct.len() > 10,
        "the first checks are spread: {waits:?}"
    );
    // A new generation is never held back by the spreading.
    let mut changed = objects[0].clone();
    changed.metadata.generation = Some(2);
    changed.spec.stage = "prod".into();
    rig.ctx.forget(changed.metadata.uid.as_deref().unwrap());
    apply(&changed, &rig.ctx).await.unwrap();
    assert!(rig.aws.state().writes_total() > 0);
}

#[tokio::test]
async fn drift_checks_leave_workers_for_changes_when_their_slots_are_taken() {
    let rig = Rig::new();
    let mut ready = seed();
    rig.ready(&mut ready).await;
    // Every drift-check slot busy (as with slow AWS and many objects).
    let _taken = rig
        .ctx
        .drift_check_slots
        .clone()
        .try_acquire_many_owned(4)
        .unwrap();
    rig.ctx.make_due(ready.metadata.uid.as_deref().unwrap());
    apply(&ready, &rig.ctx).await.unwrap();
    let calls = {
        let s = rig.aws.state();
        s.reads.values().sum::<usize>() + s.writes_total()
    };
    assert_eq!(
        calls, 0,
        "the drift check came back later instead of waiting"
    );
    // A new object is a change: it does not need a drift-check slot.
    let mut new = seed();
    new.metadata.name = Some("new".into());
    new.metadata.uid = Some("uid-new".into());
    new.spec.outputs = None;
    rig.reconcile(&mut new).await.unwrap();
    assert!(status::is_ready(&new.status.unwrap().conditions, 1));
}
