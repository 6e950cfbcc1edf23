//! The operator's AWS identity on the rig, set up the way a platform team sets it up on
//! real AWS (README, "AWS credentials"): the permissions boundary policy, a role holding
//! the shipped policy rendered for the operator's cluster id (`authedapi iam-policy`, the
//! same text as `deploy/aws-iam-policy.json` for the defaults), and a session of that
//! role. The operator runs with the session's credentials only, so every AWS request it
//! makes is judged against the shipped policy by the emulator's IAM judge.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use aws_sdk_iam::error::ProvideErrorMetadata;

use crate::emulator::{Account, Credentials};

/// The name of the boundary policy the rig creates in every account (the operator's
/// default `--permissions-boundary`).
pub const BOUNDARY_NAME: &str = "authedapi-permissions-boundary";

/// A role session the operator runs as.
#[derive(Clone, Debug)]
pub struct OperatorIdentity {
    pub role_arn: String,
    pub credentials: Credentials,
    /// The identity policy the role holds, as `authedapi iam-policy` rendered it.
    pub policy: serde_json::Value,
}

/// What to render the shipped policy for.
#[derive(Clone, Debug, Default)]
pub struct PolicyOptions {
    /// Extra `authedapi iam-policy` arguments (e.g. `--allowed-issuer`). Without an
    /// `--allowed-function`, the platform allows the account's own functions
    /// (`arn:aws:lambda:*:ACCOUNT:function:*`), as the tests' operators are
    /// (`--allowed-functions`).
    pub args: Vec<String>,
}

impl PolicyOptions {
    /// The `authedapi iam-policy` arguments for `cluster_id` in `account`.
    fn render_args(&self, cluster_id: &str, account: &Account) -> Vec<String> {
        let mut args: Vec<String> = ["--cluster-id", cluster_id, "--account-id", &account.id]
            .map(str::to_owned)
            .into();
        let names_functions = self
            .args
            .iter()
            .any(|a| a == "--allowed-function" || a == "--assume-only");
        if !names_functions {
            args.extend([
                "--allowed-function".to_owned(),
                format!("arn:aws:lambda:*:{}:function:*", account.id),
            ]);
        }
        args.extend(self.args.iter().cloned());
        args
    }
}

impl OperatorIdentity {
    /// Create (or refresh) the boundary and the operator's role for `cluster_id` in
    /// `account`, and start a session of it. `operator` is the `authedapi` binary whose
    /// `iam-policy` subcommand renders the policies.
    pub async fn provision(
        account: &Account,
        operator: &Path,
        cluster_id: &str,
        options: &PolicyOptions,
    ) -> anyhow::Result<Self> {
        let args = options.render_args(cluster_id, account);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let policy = render(operator, &args)?;
        Self::holding(account, operator, cluster_id, policy).await
    }

    /// Create (or refresh) the boundary and the operator's role for `cluster_id` in
    /// `account` holding `policy` as it is (e.g. the file a user applies from `deploy/`),
    /// and start a session of it.
    pub async fn holding(
        account: &Account,
        operator: &Path,
        cluster_id: &str,
        policy: serde_json::Value,
    ) -> anyhow::Result<Self> {
        let config = account.sdk_config().await;
        let iam = aws_sdk_iam::Client::new(&config);
        let sts = aws_sdk_sts::Client::new(&config);

        ensure_boundary(&iam, account, operator).await?;

        let role = format!("authedapi-operator-{}", role_suffix(cluster_id));
        let trust = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{}:root", account.id)},
                "Action": "sts:AssumeRole"
            }]
        });
        match iam
            .create_role()
            .role_name(&role)
            .assume_role_policy_document(trust.to_string())
            .max_session_duration(43_200)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("EntityAlreadyExists") => {}
            Err(e) => return Err(anyhow::anyhow!("creating the operator's role: {e:?}")),
        }
        iam.put_role_policy()
            .role_name(&role)
            .policy_name("authedapi")
            .policy_document(policy.to_string())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("putting the operator's policy: {e:?}"))?;
        let role_arn = format!("arn:aws:iam::{}:role/{role}", account.id);
        let session = sts
            .assume_role()
            .role_arn(&role_arn)
            .role_session_name("authedapi-operator")
            .duration_seconds(43_200)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("assuming the operator's role: {e:?}"))?;
        let c = session
            .credentials()
            .context("AssumeRole returned no credentials")?;
        Ok(Self {
            role_arn,
            credentials: Credentials {
                access_key_id: c.access_key_id().to_owned(),
                secret_access_key: c.secret_access_key().to_owned(),
                session_token: Some(c.session_token().to_owned()),
            },
            policy,
        })
    }
}

/// The operator's role for IRSA, set up as a platform team sets it up for EKS (README, "AWS
/// credentials"): the cluster's service-account issuer as an IAM OIDC provider of `account`
/// (client id `audience`), the permissions boundary, and a role named `role_name` holding
/// the shipped policy rendered for `cluster_id`, which only tokens of that issuer for
/// `subject` (`system:serviceaccount:<namespace>:<name>`) with `audience` may assume.
/// Returns the role's ARN; no credentials: the pod gets its own from STS.
pub async fn provision_web_identity_role(
    account: &Account,
    operator: &Path,
    cluster_id: &str,
    options: &PolicyOptions,
    web_identity: &WebIdentity,
) -> anyhow::Result<String> {
    let config = account.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&config);
    ensure_boundary(&iam, account, operator).await?;
    let issuer = &web_identity.issuer_host;
    let provider_arn = format!("arn:aws:iam::{}:oidc-provider/{issuer}", account.id);
    match iam
        .create_open_id_connect_provider()
        .url(format!("https://{issuer}"))
        .client_id_list(&web_identity.audience)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if e.code() == Some("EntityAlreadyExists") => {}
        Err(e) => {
            return Err(anyhow::anyhow!(
                "creating the cluster's OIDC provider: {e:?}"
            ));
        }
    }
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{issuer}:sub"): web_identity.subject,
                format!("{issuer}:aud"): web_identity.audience,
            }}
        }]
    });
    let mut args = vec!["--cluster-id", cluster_id, "--account-id", &account.id];
    args.extend(options.args.iter().map(String::as_str));
    let policy = render(operator, &args)?;
    iam.create_role()
        .role_name(&web_identity.role_name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("creating the operator's IRSA role: {e:?}"))?;
    iam.put_role_policy()
        .role_name(&web_identity.role_name)
        .policy_name("authedapi")
        .policy_document(policy.to_string())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("putting the IRSA role's policy: {e:?}"))?;
    Ok(format!(
        "arn:aws:iam::{}:role/{}",
        account.id, web_identity.role_name
    ))
}

/// Who may assume the operator's IRSA role: tokens of the cluster's service-account
/// issuer for one ServiceAccount and audience.
#[derive(Clone, Debug)]
pub struct WebIdentity {
    /// The issuer's host (and path), as its IAM OIDC provider is named.
    pub issuer_host: String,
    /// `system:serviceaccount:<namespace>:<name>`.
    pub subject: String,
    /// The token's audience, the provider's client id (`sts.amazonaws.com` for IRSA).
    pub audience: String,
    /// The role's name.
    pub role_name: String,
}

/// The role an AuthedApiTenant names in another account, set up as the README says (the
/// permissions boundary; a role whose trust, `iam-policy --trust`, lets only
/// `operator_role_arn` assume it with `external_id`; and whose policy is the operator's,
/// rendered for that account and `cluster_id`). Returns its ARN. The role is named
/// `authedapi`.
pub async fn provision_tenant_role(
    account: &Account,
    operator: &Path,
    cluster_id: &str,
    operator_role_arn: &str,
    external_id: &str,
    options: &PolicyOptions,
) -> anyhow::Result<String> {
    let config = account.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&config);
    ensure_boundary(&iam, account, operator).await?;
    let trust = render(
        operator,
        &[
            "--trust",
            "--operator-role-arn",
            operator_role_arn,
            "--external-id",
            external_id,
        ],
    )?;
    let args = options.render_args(cluster_id, account);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let policy = render(operator, &args)?;
    iam.create_role()
        .role_name(TENANT_ROLE)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("creating the tenant's role: {e:?}"))?;
    iam.put_role_policy()
        .role_name(TENANT_ROLE)
        .policy_name("authedapi")
        .policy_document(policy.to_string())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("putting the tenant role's policy: {e:?}"))?;
    Ok(tenant_role_arn(account))
}

/// The name of the role [`provision_tenant_role`] creates.
pub const TENANT_ROLE: &str = "authedapi";

/// The ARN of the role [`provision_tenant_role`] creates in `account`.
pub fn tenant_role_arn(account: &Account) -> String {
    format!("arn:aws:iam::{}:role/{TENANT_ROLE}", account.id)
}

/// The permissions boundary policy in `account` (`iam-policy --boundary`), made once.
async fn ensure_boundary(
    iam: &aws_sdk_iam::Client,
    account: &Account,
    operator: &Path,
) -> anyhow::Result<()> {
    let boundary = render(operator, &["--boundary", "--account-id", &account.id])?;
    match iam
        .create_policy()
        .policy_name(BOUNDARY_NAME)
        .policy_document(boundary.to_string())
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("EntityAlreadyExists") => Ok(()),
        Err(e) => Err(anyhow::anyhow!("creating the permissions boundary: {e:?}")),
    }
}

/// Run `operator iam-policy ARGS` and parse what it prints.
fn render(operator: &Path, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(operator)
        .arg("iam-policy")
        .args(args)
        .output()
        .with_context(|| format!("running {} iam-policy", operator.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} iam-policy {args:?} failed: {}",
        operator.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).context("iam-policy printed JSON")
}

/// A role name part from a cluster id (IAM role names allow `[\w+=,.@-]`).
fn role_suffix(cluster_id: &str) -> String {
    cluster_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect()
}
