//! Calling the APIs on the rig's web as their users do: logging in at the Auth0 stand-in,
//! Cognito's credential flow, SigV4-signed and bearer-token requests.

use std::time::{Duration, SystemTime};

use authedapi_rig::shared;

/// A logged-in user's Cognito identity and temporary credentials.
#[derive(Clone, Debug)]
pub struct Session {
    pub identity_id: String,
    pub access_key: String,
    pub secret: String,
    pub token: String,
}

/// An ID token of the shared stand-in for `username` (created with `claims` if new).
pub fn id_token(username: &str, claims: &[(&str, serde_json::Value)]) -> String {
    let mut user = authedapi_rig::auth0::TestUser::new(username, "password");
    for (k, v) in claims {
        user = user.claim(*k, v.clone());
    }
    let auth0 = shared::auth0();
    auth0.add_user(user);
    auth0
        .id_token(
            username,
            shared::AUTH0_CLIENT_ID,
            Duration::from_secs(3600),
            Default::default(),
        )
        .expect("an ID token")
}

/// Cognito's answer to get-id then get-credentials-for-identity with `id_token` from the
/// rig's Auth0 tenant.
pub async fn cognito_session(
    config: &aws_types::SdkConfig,
    pool_id: &str,
    id_token: &str,
) -> Result<Session, String> {
    cognito_session_as(config, pool_id, shared::AUTH0_DOMAIN, id_token).await
}

/// The same, logged in as the provider `login` (the issuer's host and path).
pub async fn cognito_session_as(
    config: &aws_types::SdkConfig,
    pool_id: &str,
    login: &str,
    id_token: &str,
) -> Result<Session, String> {
    let cognito = aws_sdk_cognitoidentity::Client::new(config);
    fn shown(e: impl std::error::Error) -> String {
        format!("{}", aws_sdk_cognitoidentity::error::DisplayErrorContext(e))
    }
    let identity_id = cognito
        .get_id()
        .identity_pool_id(pool_id)
        .logins(login, id_token)
        .send()
        .await
        .map_err(shown)?
        .identity_id
        .unwrap_or_default();
    let credentials = cognito
        .get_credentials_for_identity()
        .identity_id(&identity_id)
        .logins(login, id_token)
        .send()
        .await
        .map_err(shown)?
        .credentials
        .unwrap();
    Ok(Session {
        identity_id,
        access_key: credentials.access_key_id.unwrap(),
        secret: credentials.secret_key.unwrap(),
        token: credentials.session_token.unwrap(),
    })
}

/// What a person does with the login URL `url` `authedapi call` printed: submit the
/// issuer's login form at `authorize` as `username`, follow the redirect back to the
/// waiting `authedapi call` (which must start with `redirect`) and see its page. Returns
/// the URL the issuer redirected to.
pub async fn log_in_from_terminal(
    url: &str,
    authorize: &str,
    username: &str,
    password: &str,
    redirect: &str,
) -> String {
    let mut form: Vec<(String, String)> = url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    form.push(("username".into(), username.into()));
    form.push(("password".into(), password.into()));
    let browser = shared::web().http_client().unwrap();
    let login = browser.post(authorize).form(&form).send().await.unwrap();
    assert_eq!(login.status(), 302);
    let back = login.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(redirect), "{back}");
    let page = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(&back)
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("Logged in"));
    back
}

/// `request` signed for execute-api with SigV4, as any SigV4 tool signs it.
pub fn signed(mut request: http::Request<Vec<u8>>, session: &Session) -> reqwest::Request {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity = aws_credential_types::Credentials::new(
        &session.access_key,
        &session.secret,
        Some(session.token.clone()),
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("execute-api")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(request.body()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut request);
    reqwest::Request::try_from(request).unwrap()
}

/// A plain GET of `url`, as an http::Request to sign or send.
pub fn get(url: &str) -> http::Request<Vec<u8>> {
    http::Request::get(url).body(Vec::new()).unwrap()
}

/// (status, body) of a response.
pub async fn answer(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// `authedapi call` with `args` against the rig (through the web, as a user's machine);
/// `env` on top of the web's client env.
pub fn call_command(
    namespace: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_authedapi"));
    command
        .arg("call")
        .args(["-n", namespace])
        .args(args)
        .env("KUBECONFIG", &shared::control_plane().kubeconfig)
        .env("AWS_ENDPOINT_URL", &shared::emulator().endpoint)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AUTHEDAPI_ID_TOKEN")
        .envs(shared::web().client_env())
        .envs(env.iter().copied());
    command
}
