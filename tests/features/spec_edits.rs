//! Editing the spec: a changed route (authorization, target), a removed route and an
//! added one converge in place on the same API — routes, integrations, the invoke policy
//! and the Lambda permissions follow; `observedGeneration` tracks each edit, so
//! `kubectl wait --for=condition=Ready` waits for the new generation; with every route
//! public the role keeps no invoke policy at all.

use serde_json::json;

use authedapi::aws::apigateway::RouteAuth;
use authedapi_rig::shared;

use crate::common::{Fixture, api_id, apply};

#[tokio::test]
async fn spec_edits_converge_and_kubectl_wait_works() {
    let s = Fixture::new("op-edit", &[]).await;
    let seed = s.seed("edited").await;
    let first = s.apply_ready(&seed).await;
    assert_eq!(first.status.as_ref().unwrap().observed_generation, Some(1));
    let id = api_id(&first);

    // Flip GET /private from iam to none and point it at a URL; drop GET /public; add
    // POST /items (iam, by default).
    let private_fn = seed["spec"]["routes"][0]["target"]["lambda"]["functionArn"].clone();
    let public_fn = seed["spec"]["routes"][1]["target"]["lambda"]["functionArn"].clone();
    let mut edited = seed.clone();
    edited["spec"]["routes"] = json!([
        {"route": "GET /private", "authorization": "none",
         "target": {"http": {"url": "https://example.com/private"}}},
        {"route": "POST /items", "target": {"lambda": {"functionArn": private_fn}}},
    ]);
    apply(&s.api, &edited).await;

    // kubectl wait sees the new generation through to Ready.
    let out = shared::control_plane()
        .kubectl()
        .unwrap()
        .args([
            "wait",
            "--for=condition=Ready",
            "--timeout=60s",
            "-n",
            &s.namespace.name,
            "authedapi/edited",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = s.ready("edited").await;
    assert_eq!(second.status.as_ref().unwrap().observed_generation, Some(2));
    assert_eq!(api_id(&second), id, "the same API, updated in place");

    let routes = s.aws.apigateway.list_routes(&id).await.unwrap();
    let mut keys: Vec<_> = routes
        .iter()
        .map(|r| (r.key.clone(), r.auth.clone()))
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        keys,
        vec![
            ("GET /private".to_owned(), RouteAuth::None),
            ("POST /items".to_owned(), RouteAuth::Iam)
        ]
    );
    let integrations = s.aws.apigateway.list_integrations(&id).await.unwrap();
    assert_eq!(
        integrations.len(),
        2,
        "the unused integration is gone: {integrations:?}"
    );
    let private_route = routes.iter().find(|r| r.key == "GET /private").unwrap();
    let private_integration = integrations
        .iter()
        .find(|i| Some(&i.id) == private_route.integration_id.as_ref())
        .unwrap();
    assert!(format!("{:?}", private_integration.target).contains("https://example.com/private"));

    let policy = s.invoke_policy(&second).await.unwrap();
    assert_eq!(
        policy["Statement"][0]["Resource"],
        json!([s.arn(&format!("{id}/$default/POST/items"))])
    );

    // The public function is no longer a target: its permission is gone; the private
    // function's stays.
    let public = s
        .aws
        .lambda
        .permissions(public_fn.as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(public.is_empty(), "{public:?}");
    let private = s
        .aws
        .lambda
        .permissions(private_fn.as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(private.len(), 1);

    // Every route public: the role keeps no invoke policy at all.
    let mut open = edited.clone();
    open["spec"]["defaultAuthorization"] = json!("none");
    let third = s.apply_ready(&open).await;
    assert_eq!(third.status.as_ref().unwrap().observed_generation, Some(3));
    assert_eq!(s.invoke_policy(&third).await, None);
}
