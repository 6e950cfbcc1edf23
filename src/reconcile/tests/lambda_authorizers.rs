//! Lambda REQUEST authorizers: created with the route that names them, their function
//! invokable by the API's authorizers only, kept as planned, and pruned apart from the
//! JWT authorizer.

use super::*;
use crate::aws::apigateway::{Authorizer, RequestAuthorizer, RouteAuth};
use crate::aws::lambda::Permission;

/// The one REQUEST authorizer of the one API.
fn lambda_authorizer(rig: &Rig) -> RequestAuthorizer {
    let s = rig.aws.state();
    let api = s.apis.values().next().expect("an API");
    let found: Vec<&RequestAuthorizer> = api
        .authorizers
        .iter()
        .filter_map(Authorizer::as_request)
        .collect();
    assert_eq!(found.len(), 1, "{:?}", api.authorizers);
    found[0].clone()
}

fn jwt_authorizers(rig: &Rig) -> usize {
    let s = rig.aws.state();
    let api = s.apis.values().next().expect("an API");
    api.authorizers
        .iter()
        .filter_map(Authorizer::as_jwt)
        .count()
}

fn statements(rig: &Rig, function: &str) -> Vec<Permission> {
    rig.aws.state().functions[function].clone()
}

#[tokio::test]
async fn a_lambda_route_gets_its_authorizer_and_the_function_only_authorizers_may_invoke() {
    let rig = Rig::new();
    let mut obj = with_lambda_authorizer(seed());
    rig.reconcile(&mut obj).await.unwrap();
    let status = obj.status.clone().unwrap();
    assert!(status::is_ready(&status.conditions, 1));

    let authorizer = lambda_authorizer(&rig);
    assert_eq!(authorizer.name, "lambda-users");
    assert_eq!(
        authorizer.config.uri,
        format!(
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{AUTH_FN}/invocations"
        )
    );
    assert_eq!(
        authorizer.config.identity_sources,
        ["$request.header.Authorization"]
    );
    assert_eq!(authorizer.config.result_ttl_seconds, 300);
    assert!(authorizer.config.simple_responses);
    assert_eq!(authorizer.config.payload_format_version, "2.0");
    assert_eq!(jwt_authorizers(&rig), 1, "the JWT route keeps its own");

    let s = rig.aws.state();
    let api = s.apis.values().next().unwrap();
    let route = api.routes.iter().find(|r| r.key == "GET /lambda").unwrap();
    assert_eq!(
        route.auth,
        RouteAuth::Custom {
            authorizer_id: authorizer.id.clone()
        }
    );
    let api_id = api.api.id.clone();
    drop(s);

    let source =
        |suffix: &str| format!("arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/{suffix}");
    let auth = statements(&rig, AUTH_FN);
    assert_eq!(auth.len(), 1, "{auth:?}");
    assert_eq!(auth[0].source_arn, Some(source("authorizers/*")));
    assert_eq!(
        statements(&rig, PUBLIC_FN)[0].source_arn,
        Some(source("*")),
        "a target keeps any route of the API"
    );
    assert!(status.lambda_permissions.contains(&AUTH_FN.to_string()));
    assert_eq!(
        status
            .routes
            .iter()
            .find(|r| r.route == "GET /lambda")
            .map(|r| r.authorization),
        Some(crate::api::Authorization::Lambda)
    );
}

#[tokio::test]
async fn a_function_both_target_and_authorizer_keeps_the_wider_source() {
    let rig = Rig::new();
    let mut obj = with_lambda_authorizer(seed());
    obj.spec.authorizers[0].lambda.function_arn = PUBLIC_FN.into();
    rig.reconcile(&mut obj).await.unwrap();
    let api_id = rig.api_id();
    let public = statements(&rig, PUBLIC_FN);
    assert_eq!(public.len(), 1);
    assert_eq!(
        public[0].source_arn,
        Some(format!(
            "arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/*"
        ))
    );
    assert!(statements(&rig, AUTH_FN).is_empty());
}

#[tokio::test]
async fn an_authorizer_changed_out_of_band_is_updated_in_place() {
    let rig = Rig::new();
    let mut obj = with_lambda_authorizer(seed());
    rig.ready(&mut obj).await;
    let planned = lambda_authorizer(&rig);
    let api_id = rig.api_id();
    {
        let mut s = rig.aws.state();
        for authorizer in &mut s.api(&api_id).unwrap().authorizers {
            if let Authorizer::Request(a) = authorizer {
                a.config.result_ttl_seconds = 0;
                a.config.identity_sources = vec!["$request.header.X-Other".into()];
                a.config.uri = a.config.uri.replace("authorizer", "someone-elses");
            }
        }
    }
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(names(&rig.writes()), vec!["UpdateAuthorizer"]);
    assert_eq!(
        lambda_authorizer(&rig),
        planned,
        "same id, settings as planned"
    );
}

#[tokio::test]
async fn a_spec_change_updates_the_authorizer_in_place() {
    let rig = Rig::new();
    let mut obj = with_lambda_authorizer(seed());
    rig.ready(&mut obj).await;
    let id = lambda_authorizer(&rig).id;
    let lambda = &mut obj.spec.authorizers[0].lambda;
    lambda.result_ttl_seconds = 60;
    lambda.simple_responses = false;
    lambda.payload_format_version = crate::api::PayloadFormatVersion::V1;
    lambda.identity_sources = vec!["$request.querystring.token".into()];
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(names(&rig.writes()), vec!["UpdateAuthorizer"]);
    let updated = lambda_authorizer(&rig);
    assert_eq!(updated.id, id);
    assert_eq!(
        (
            updated.config.result_ttl_seconds,
            updated.config.simple_responses,
            updated.config.payload_format_version.as_str(),
            updated.config.identity_sources.as_slice(),
        ),
        (
            60,
            false,
            "1.0",
            ["$request.querystring.token".to_string()].as_slice()
        )
    );
}

#[tokio::test]
async fn a_removed_authorizer_goes_after_its_route_and_leaves_the_jwt_one() {
    let rig = Rig::new();
    let mut obj = with_lambda_authorizer(seed());
    rig.ready(&mut obj).await;
    obj.spec.authorizers.clear();
    obj.spec.routes.retain(|r| r.route != "GET /lambda");
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    let writes = rig.writes();
    assert_eq!(
        names(&writes),
        vec!["DeleteAuthorizer", "DeleteRoute", "RemovePermission"]
    );
    assert_eq!(writes["DeleteAuthorizer"], 1);
    assert_eq!(jwt_authorizers(&rig), 1);
    assert!(statements(&rig, AUTH_FN).is_empty());
    assert!(
        !obj.status
            .unwrap()
            .lambda_permissions
            .contains(&AUTH_FN.to_string())
    );
}

#[tokio::test]
async fn the_last_jwt_route_takes_only_the_jwt_authorizer() {
    let rig = Rig::new();
    let mut obj = with_lambda_authorizer(seed());
    rig.ready(&mut obj).await;
    let lambda = lambda_authorizer(&rig);
    obj.spec.routes.retain(|r| r.route != "GET /reports");
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.writes().get("DeleteAuthorizer"), Some(&1));
    assert_eq!(jwt_authorizers(&rig), 0);
    assert_eq!(lambda_authorizer(&rig), lambda);
}

#[tokio::test]
async fn an_authorizer_function_the_namespace_may_not_use_is_refused_before_any_aws_call() {
    let rig = Rig::new();
    let mut obj = with_lambda_authorizer(seed());
    let theirs = "arn:aws:lambda:us-east-1:999999999999:function:theirs";
    obj.spec.authorizers[0].lambda.function_arn = theirs.into();
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "NotAllowed");
    assert!(e.to_string().contains(theirs), "{e}");
    let s = rig.aws.state();
    assert_eq!((s.writes_total(), s.reads.len()), (0, 0));
}

#[tokio::test]
async fn deleting_the_object_takes_the_authorizers_permission_too() {
    let rig = Rig::new();
    let mut obj = with_lambda_authorizer(seed());
    rig.ready(&mut obj).await;
    rig.delete(&obj).await.unwrap();
    assert!(rig.aws.state().apis.is_empty());
    assert!(statements(&rig, AUTH_FN).is_empty());
}

#[tokio::test]
async fn a_resync_reads_the_authorizers_once_for_both_kinds_and_writes_nothing() {
    let rig = Rig::new();
    let mut obj = with_lambda_authorizer(seed());
    rig.ready(&mut obj).await;
    rig.reconcile(&mut obj).await.unwrap();
    let s = rig.aws.state();
    assert_eq!(s.reads.get("GetAuthorizers"), Some(&1), "{:?}", s.reads);
    assert_eq!(s.writes_total(), 0, "{:?}", s.writes);
}
