//! The seed's walkthrough (`api-auth-auth0`), step by step, with the seed's own expected
//! answers, on the rig's web: the execute-api data plane running the seed's two handlers,
//! an Auth0 stand-in, and Cognito's credential flow — each judged as AWS judges it.
//!
//!   /public says "Hello stranger!"; /private says {"message":"Forbidden"}; after an Auth0
//!   login, the code exchange, get-id and get-credentials-for-identity, a SigV4-signed
//!   call says "Hello user!"; after a change to the handler, "Hello <identity id>!"; and
//!   `kubectl delete` (`sst remove`) takes the endpoint away.

mod common;

use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi_rig::auth0::TestUser;
use authedapi_rig::{TestNamespace, shared};
use kube::api::Api;

use common::web::{Session, get, signed};
use common::{Operator, apply, install_crd, seed_in, wait_gone, wait_ready};

#[tokio::test]
async fn the_seeds_walkthrough_step_by_step() {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, "walkthrough").await.unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    let web = shared::web();
    let auth0 = shared::auth0();
    auth0.add_user(TestUser::new(
        "walker@example.com",
        "correct horse battery staple",
    ));
    let http = web.http_client().unwrap();

    // Deploy: the seed, with the stand-in as its Auth0 app.
    let mut seed = seed_in(&account, &config, "api-auth-auth0").await;
    seed["spec"]["auth0"] = serde_json::json!({
        "domain": format!("https://{}", shared::AUTH0_DOMAIN),
        "clientId": shared::AUTH0_CLIENT_ID,
    });
    let operator = Operator::start(&ns.name, &account, &[], &[]).await;
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);
    apply(&api, &seed).await;
    let obj = wait_ready(&api, "api-auth-auth0", &operator, Duration::from_secs(60)).await;
    let status = obj.status.unwrap();
    let endpoint = status.api_endpoint.unwrap();
    let pool_id = status.identity_pool_id.unwrap();
    assert!(
        endpoint.starts_with("https://")
            && endpoint.ends_with(".execute-api.us-east-1.amazonaws.com")
    );

    // "Head over to .../public: you should see the greeting Hello stranger!"
    let public = http.get(format!("{endpoint}/public")).send().await.unwrap();
    assert_eq!(public.status(), 200);
    assert_eq!(public.text().await.unwrap(), "Hello stranger!");
    // "...if you try to visit the private route, you will see {"message":"Forbidden"}."
    let private = http
        .get(format!("{endpoint}/private"))
        .send()
        .await
        .unwrap();
    assert_eq!(private.status(), 403);
    assert_eq!(private.text().await.unwrap(), r#"{"message":"Forbidden"}"#);

    // "Login with Auth0": the universal login page, then the redirect with the code.
    let authorize = format!(
        "https://{}/authorize?response_type=code&client_id={}&redirect_uri=http://localhost:5678&scope=openid%20profile",
        shared::AUTH0_DOMAIN,
        shared::AUTH0_CLIENT_ID
    );
    let page = http.get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form"), "a login page");
    let login = http
        .post(format!("https://{}/authorize", shared::AUTH0_DOMAIN))
        .form(&[
            ("response_type", "code"),
            ("client_id", shared::AUTH0_CLIENT_ID),
            ("redirect_uri", "http://localhost:5678"),
            ("scope", "openid profile"),
            ("username", "walker@example.com"),
            ("password", "correct horse battery staple"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 302);
    let location = login.headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("the callback carries the code");

    // "Next, we need to exchange the user's code for tokens."
    let tokens: serde_json::Value = http
        .post(format!("https://{}/oauth/token", shared::AUTH0_DOMAIN))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", shared::AUTH0_CLIENT_ID),
            ("client_secret", shared::AUTH0_CLIENT_SECRET),
            ("code", code.as_str()),
            ("redirect_uri", "http://localhost:5678"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile");
    let id_token = tokens["id_token"].as_str().unwrap();

    // "aws cognito-identity get-id ... --logins <domain>=<id_token>"
    let cognito = aws_sdk_cognitoidentity::Client::new(&config);
    let identity_id = cognito
        .get_id()
        .identity_pool_id(&pool_id)
        .logins(shared::AUTH0_DOMAIN, id_token)
        .send()
        .await
        .unwrap()
        .identity_id
        .unwrap();
    assert!(identity_id.starts_with("us-east-1:"), "{identity_id}");
    // "aws cognito-identity get-credentials-for-identity"
    let credentials = cognito
        .get_credentials_for_identity()
        .identity_id(&identity_id)
        .logins(shared::AUTH0_DOMAIN, id_token)
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    let session = Session {
        identity_id: identity_id.clone(),
        access_key: credentials.access_key_id.unwrap(),
        secret: credentials.secret_key.unwrap(),
        token: credentials.session_token.unwrap(),
    };
    assert!(
        session.access_key.starts_with("ASIA"),
        "temporary credentials"
    );

    // "Let's make a call to the private route using the credentials" (SigV4-signed).
    let signed_get = |path: &str| signed(get(&format!("{endpoint}{path}")), &session);
    let private = http.execute(signed_get("/private")).await.unwrap();
    assert_eq!(private.status(), 200);
    assert_eq!(private.text().await.unwrap(), "Hello user!");

    // "Making changes": the handler greets the caller by their identity id.
    authedapi_rig::functions::update_code(
        &config,
        "api-auth-auth0-dev-private",
        &common::repo().join("examples/functions/private-identity.mjs"),
    )
    .await
    .unwrap();
    let private = http.execute(signed_get("/private")).await.unwrap();
    assert_eq!(private.status(), 200);
    assert_eq!(
        private.text().await.unwrap(),
        format!("Hello {identity_id}!")
    );

    // "Cleaning up" (sst remove): the endpoint stops answering.
    api.delete("api-auth-auth0", &Default::default())
        .await
        .unwrap();
    wait_gone(&api, "api-auth-auth0", &operator, Duration::from_secs(60)).await;
    let gone = http.get(format!("{endpoint}/public")).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(gone.text().await.unwrap(), r#"{"message":"Not Found"}"#);
}
