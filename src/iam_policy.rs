//! The AWS IAM policies the operator ships, rendered for one cluster: its own identity
//! policy (what the operator may do) and the permissions boundary every role it creates
//! carries (what those roles may ever do). `authedapi iam-policy` prints them;
//! `deploy/aws-iam-policy.json` and `deploy/aws-permissions-boundary.json` are the
//! rendering for the defaults, and a test fails when they are stale.
//!
//! What the identity policy guarantees, statement by statement, is in each statement's
//! comment below; the rig's IAM judge proves it request by request (see the README's
//! threat model). What IAM cannot express is said where it applies.

use serde_json::{Value, json};

use crate::plan::{
    MANAGED_BY, OUR_TAG_PREFIX, ROLE_PATH, TAG_CLUSTER, TAG_MANAGED_BY, issuer_name,
    record_key_prefixes,
};

/// The permissions boundary's name when none is configured.
pub const DEFAULT_BOUNDARY_NAME: &str = "authedapi-permissions-boundary";
/// The issuers an AuthedApi may name when the platform configures none: Auth0's domains.
pub const DEFAULT_ALLOWED_ISSUERS: &[&str] = &["*.auth0.com"];
/// The service Cognito's identity pools are.
const COGNITO_SERVICE: &str = "cognito-identity.amazonaws.com";
const APIGATEWAY_SERVICE: &str = "apigateway.amazonaws.com";
/// The service principal of API Gateway's service-linked role, which manages the network
/// interfaces of VPC links.
const APIGATEWAY_OPS_SERVICE: &str = "ops.apigateway.amazonaws.com";
/// Every action the operator's policy allows on OIDC providers.
const PROVIDER_ACTIONS: [&str; 7] = [
    "iam:GetOpenIDConnectProvider",
    "iam:CreateOpenIDConnectProvider",
    "iam:TagOpenIDConnectProvider",
    "iam:UntagOpenIDConnectProvider",
    "iam:AddClientIDToOpenIDConnectProvider",
    "iam:RemoveClientIDFromOpenIDConnectProvider",
    "iam:DeleteOpenIDConnectProvider",
];

/// What a rendering is for.
#[derive(Clone, Debug, clap::Args)]
pub struct PolicyParams {
    /// The operator's --cluster-id: writes are allowed only on resources tagged with it.
    #[arg(long, default_value = "default")]
    pub cluster_id: String,
    /// The AWS partition (aws, aws-cn, aws-us-gov).
    #[arg(long, default_value = "aws")]
    pub partition: String,
    /// The account the operator works in; `*` for any.
    #[arg(long, default_value = "*")]
    pub account_id: String,
    /// The name of the permissions boundary policy (created from the --boundary output)
    /// that every role the operator creates must carry.
    #[arg(long, default_value = DEFAULT_BOUNDARY_NAME)]
    pub permissions_boundary_name: String,
    /// Issuers (a host, or a host and a path, with `*` wildcards, e.g. `*.auth0.com` or
    /// `*.okta.com/oauth2/*`) whose IAM OIDC providers the operator may use, as the
    /// operator's --allowed-issuers says. Repeatable.
    #[arg(long = "allowed-issuer", default_values_t = DEFAULT_ALLOWED_ISSUERS.iter().map(|s| s.to_string()))]
    pub allowed_issuers: Vec<String>,
    /// Lambda function ARN patterns API routes may target (the union of what tenants
    /// allow), each in one account: `arn:aws:lambda:REGION:ACCOUNT:function:NAME`, with `*`
    /// wildcards in REGION and NAME. Repeatable. None (the default): the policy lets the
    /// operator touch no function, and routes to Lambda functions stall until the platform
    /// names them.
    #[arg(long = "allowed-function")]
    pub allowed_functions: Vec<String>,
    /// Roles in tenants' accounts the operator assumes (AuthedApiTenant spec.aws.roleArn):
    /// adds sts:AssumeRole on exactly these. Repeatable.
    #[arg(long = "assume-role")]
    pub assume_roles: Vec<String>,
    /// Only the sts:AssumeRole statement: for an operator whose own account holds no
    /// AuthedApi resources (`--own-account=deny`).
    #[arg(long, requires = "assume_roles")]
    pub assume_only: bool,
    /// With --trust: the operator's role, the only principal that may assume the
    /// tenant's role.
    #[arg(long, required_if_eq("trust", "true"))]
    pub operator_role_arn: Option<String>,
    /// With --trust: the external id the tenant's AuthedApiTenant gives
    /// (spec.aws.externalId).
    #[arg(long)]
    pub external_id: Option<String>,
    /// Print the trust policy of a tenant account's role instead (with
    /// --operator-role-arn and --external-id); its permissions are this command rendered
    /// with --account-id of that account.
    #[arg(long)]
    pub trust: bool,
}

impl Default for PolicyParams {
    fn default() -> Self {
        Self {
            cluster_id: "default".into(),
            partition: "aws".into(),
            account_id: "*".into(),
            permissions_boundary_name: DEFAULT_BOUNDARY_NAME.into(),
            allowed_issuers: DEFAULT_ALLOWED_ISSUERS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            allowed_functions: Vec::new(),
            assume_roles: Vec::new(),
            assume_only: false,
            operator_role_arn: None,
            external_id: None,
            trust: false,
        }
    }
}

impl PolicyParams {
    fn boundary_arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:policy/{}",
            self.partition, self.account_id, self.permissions_boundary_name
        )
    }

    fn role_arns(&self) -> String {
        format!(
            "arn:{}:iam::{}:role{ROLE_PATH}*",
            self.partition, self.account_id
        )
    }

    /// One provider ARN pattern per allowed issuer: its host (in lower case, as the
    /// operator names providers) and path. IAM's `*` matches across `/`, so a host pattern
    /// like `*.auth0.com` also covers ARNs with a path ending in it: the policy denies
    /// those (`host_wildcard_crossings`).
    fn provider_arns(&self) -> Vec<String> {
        self.allowed_issuers
            .iter()
            .map(|issuer| {
                format!(
                    "arn:{}:iam::{}:oidc-provider/{}",
                    self.partition,
                    self.account_id,
                    issuer_name(issuer)
                )
            })
            .collect()
    }
}

/// The provider names an allowed issuer's host wildcards would reach through a `/`: IAM's
/// `*` and `?` match `/` too, so `oidc-provider/*.auth0.com` also matches
/// `oidc-provider/attacker.example/x.auth0.com`, a provider for the issuer
/// `https://attacker.example/x.auth0.com`. One pattern per wildcard of a host, that
/// wildcard made to contain a `/` (`*/*.auth0.com`); the operator's own check never lets a
/// host wildcard reach into a path either (`tenant::issuer_allowed`).
fn host_wildcard_crossings(issuers: &[String]) -> Vec<String> {
    let mut crossings = Vec::new();
    for issuer in issuers {
        let name = issuer_name(issuer);
        let host_end = name.find('/').unwrap_or(name.len());
        for (i, c) in name[..host_end].char_indices() {
            let through = match c {
                '*' => "*/*",
                '?' => "/",
                _ => continue,
            };
            let crossing = format!("{}{through}{}", &name[..i], &name[i + 1..]);
            if !crossings.contains(&crossing) {
                crossings.push(crossing);
            }
        }
    }
    crossings
}

/// Why `pattern` is not a Lambda function ARN pattern the policy may name: one account
/// (`account`, when the rendering is for one), this partition, `*` only in the region
/// and the name. None when it is one.
fn function_pattern_problem(pattern: &str, partition: &str, account: &str) -> Option<String> {
    let parts: Vec<&str> = pattern.splitn(7, ':').collect();
    let shape = parts.len() == 7
        && parts[0] == "arn"
        && parts[2] == "lambda"
        && parts[5] == "function"
        && !parts[3].is_empty()
        && !parts[6].is_empty();
    if !shape {
        return Some(format!(
            "--allowed-function {pattern}: not a Lambda function ARN pattern \
             (arn:{partition}:lambda:REGION:ACCOUNT:function:NAME, `*` in REGION and NAME)"
        ));
    }
    if parts[1] != partition {
        return Some(format!(
            "--allowed-function {pattern}: not in the partition {partition} (--partition)"
        ));
    }
    let function_account = parts[4];
    if function_account.len() != 12 || !function_account.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!(
            "--allowed-function {pattern}: name one account (12 digits), not {function_account:?}: \
             a pattern across accounts lets the operator's credentials open any account's \
             functions to API Gateway"
        ));
    }
    if account != "*" && function_account != account {
        return Some(format!(
            "--allowed-function {pattern}: the function is in account {function_account}, the \
             policy is for account {account} (--account-id): render a policy for each account"
        ));
    }
    None
}

impl PolicyParams {
    /// Refuse a rendering that would grant more than asked for.
    pub fn validate(&self) -> Result<(), String> {
        let problems: Vec<String> = self
            .allowed_functions
            .iter()
            .filter_map(|f| function_pattern_problem(f, &self.partition, &self.account_id))
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// What a person should know about this rendering (printed on stderr): what it is
    /// wider or narrower than, when the defaults were left.
    pub fn notes(&self, boundary: bool) -> Vec<String> {
        let mut notes = Vec::new();
        if self.account_id == "*" && !self.trust {
            notes.push(
                "no --account-id: rendered for any account (ARNs name account `*`); give the \
                 account the operator works in"
                    .to_owned(),
            );
        }
        if !boundary && !self.trust && !self.assume_only && self.allowed_functions.is_empty() {
            notes.push(
                "no --allowed-function: the operator may touch no Lambda function, so routes to \
                 Lambda functions stall with AccessDenied; name the functions your tenants \
                 allow (--allowed-function arn:aws:lambda:REGION:ACCOUNT:function:PREFIX-*)"
                    .to_owned(),
            );
        }
        notes
    }
}

/// The operator's identity policy.
pub fn operator_policy(p: &PolicyParams) -> Value {
    let cluster = p.cluster_id.as_str();
    let ours = json!({"StringEquals": {format!("aws:ResourceTag/{TAG_CLUSTER}"): cluster}});
    let tagged_ours = json!({"StringEquals": {format!("aws:RequestTag/{TAG_CLUSTER}"): cluster}});
    let apis = format!("arn:{}:apigateway:*::/apis", p.partition);
    let domains = format!("arn:{}:apigateway:*::/domainnames", p.partition);
    let links = format!("arn:{}:apigateway:*::/vpclinks", p.partition);
    let pools = format!(
        "arn:{}:cognito-identity:*:{}:identitypool/*",
        p.partition, p.account_id
    );
    let roles = p.role_arns();
    let providers = p.provider_arns();
    let boundary = json!({"ArnLike": {"iam:PermissionsBoundary": p.boundary_arn()}});
    let (uses, added) = record_key_prefixes(cluster);
    // Untagging removes only the organisation's tags (spec.tags, --resource-tags), never
    // the operator's own: a request naming an authedapi.dev/ key is not allowed.
    let not_our_keys = json!({"aws:TagKeys": [format!("{OUR_TAG_PREFIX}*")]});
    let mut policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            // Reading HTTP APIs (listing finds one a crash left unrecorded, by its tags).
            {
                "Sid": "ReadHttpApis",
                "Effect": "Allow",
                "Action": "apigateway:GET",
                "Resource": [apis, format!("{apis}/*")]
            },
            // An API is created only carrying this cluster's tag...
            {
                "Sid": "CreateHttpApisTaggedForThisCluster",
                "Effect": "Allow",
                "Action": "apigateway:POST",
                "Resource": apis,
                "Condition": tagged_ours
            },
            // ...and only such APIs (their routes, integrations, authorizers, stages) are
            // changed. API Gateway's tags resource (/tags/ARN) has no resource-tag key, so
            // no statement lets the operator tag or untag an existing API: tags are set at
            // creation only. Lambda authorizers too: which function one runs cannot be
            // pinned here (the reference documents no AuthorizerUri key for HTTP API
            // authorizers); API Gateway runs only functions that let it, and the operator
            // adds that permission only on allowed functions (the Lambda statements).
            {
                "Sid": "ChangeThisClustersHttpApis",
                "Effect": "Allow",
                "Action": ["apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"],
                "Resource": format!("{apis}/*"),
                "Condition": ours
            },
            // Custom domains: reading any (to tell ours from someone else's, and count the
            // mappings left on ours).
            {
                "Sid": "ReadDomainNames",
                "Effect": "Allow",
                "Action": "apigateway:GET",
                "Resource": [domains.clone(), format!("{domains}/*")]
            },
            // A domain is created only regional and carrying this cluster's tags...
            {
                "Sid": "CreateRegionalDomainNamesTaggedForThisCluster",
                "Effect": "Allow",
                "Action": "apigateway:POST",
                "Resource": domains.clone(),
                // The endpoint type is a list (one per configuration): every one REGIONAL,
                // and there is one.
                "Condition": {
                    "StringEquals": {
                        format!("aws:RequestTag/{TAG_CLUSTER}"): cluster,
                        format!("aws:RequestTag/{TAG_MANAGED_BY}"): MANAGED_BY
                    },
                    "ForAllValues:StringEquals": {"apigateway:Request/EndpointType": "REGIONAL"},
                    "Null": {"apigateway:Request/EndpointType": "false"}
                }
            },
            // ...and only such domains get a new certificate (staying regional), mappings
            // made and removed, or are deleted (mappings have no tags: access control reads
            // the domain's). An API mapping names its API in the body, which no condition
            // key exposes: the operator maps only its own APIs, IAM cannot insist.
            {
                "Sid": "ChangeThisClustersDomainNames",
                "Effect": "Allow",
                "Action": ["apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"],
                "Resource": format!("{domains}/*"),
                "Condition": {
                    "StringEquals": {format!("aws:ResourceTag/{TAG_CLUSTER}"): cluster},
                    "ForAllValues:StringEquals": {"apigateway:Request/EndpointType": "REGIONAL"}
                }
            },
            // VPC links: reading any (listing finds ours by their uid tag; a referenced one
            // is read by its id).
            {
                "Sid": "ReadVpcLinks",
                "Effect": "Allow",
                "Action": "apigateway:GET",
                "Resource": [links.clone(), format!("{links}/*")]
            },
            // A link is created only carrying this cluster's tag...
            {
                "Sid": "CreateVpcLinksTaggedForThisCluster",
                "Effect": "Allow",
                "Action": "apigateway:POST",
                "Resource": links.clone(),
                "Condition": tagged_ours
            },
            // ...and only such links are renamed or deleted (a referenced link not ours is
            // never touched). An integration names its link in the body, which no condition
            // key exposes: the operator uses only its own links and the ones a spec names.
            {
                "Sid": "ChangeThisClustersVpcLinks",
                "Effect": "Allow",
                "Action": ["apigateway:PATCH", "apigateway:DELETE"],
                "Resource": format!("{links}/*"),
                "Condition": ours
            },
            // The first VPC link of an account makes API Gateway create its service-linked
            // role (which manages the links' network interfaces), as the caller: only that
            // role, only for that service.
            {
                "Sid": "CreateApiGatewaysServiceLinkedRole",
                "Effect": "Allow",
                "Action": "iam:CreateServiceLinkedRole",
                "Resource": format!(
                    "arn:{}:iam::{}:role/aws-service-role/{APIGATEWAY_OPS_SERVICE}/AWSServiceRoleForAPIGateway",
                    p.partition, p.account_id
                ),
                "Condition": {"StringEquals": {"iam:AWSServiceName": APIGATEWAY_OPS_SERVICE}}
            },
            // Listing and reading pools; CreateIdentityPool and SetIdentityPoolRoles have no
            // resource type, so only "*" grants them.
            {
                "Sid": "ReadIdentityPools",
                "Effect": "Allow",
                "Action": [
                    "cognito-identity:ListIdentityPools",
                    "cognito-identity:DescribeIdentityPool",
                    "cognito-identity:GetIdentityPoolRoles"
                ],
                "Resource": "*"
            },
            {
                "Sid": "CreateIdentityPoolsTaggedForThisCluster",
                "Effect": "Allow",
                "Action": "cognito-identity:CreateIdentityPool",
                "Resource": "*",
                "Condition": tagged_ours
            },
            {
                "Sid": "ChangeThisClustersIdentityPools",
                "Effect": "Allow",
                "Action": [
                    "cognito-identity:UpdateIdentityPool",
                    "cognito-identity:DeleteIdentityPool",
                    "cognito-identity:TagResource"
                ],
                "Resource": pools,
                "Condition": ours
            },
            // A tag removed from spec.tags (or --resource-tags) leaves this cluster's
            // pools; the operator's own tags never do.
            {
                "Sid": "UntagTheOrganisationsTagsFromThisClustersIdentityPools",
                "Effect": "Allow",
                "Action": "cognito-identity:UntagResource",
                "Resource": pools,
                "Condition": {
                    "StringEquals": {format!("aws:ResourceTag/{TAG_CLUSTER}"): cluster},
                    "ForAllValues:StringNotLike": not_our_keys
                }
            },
            // IAM cannot scope this call (no resource type, no condition key): the roles it
            // can hand out are limited by PassOnlyThisClustersRolesToCognito below.
            {
                "Sid": "SetIdentityPoolRoles",
                "Effect": "Allow",
                "Action": "cognito-identity:SetIdentityPoolRoles",
                "Resource": "*"
            },
            // IAM authorizes GetRole on a role that does not exist (yet) as
            // role/NAME, without a path: finding out whether ours exists needs role/*.
            // It reads metadata only (trust policy, tags), never permissions.
            {
                "Sid": "FindRolesByName",
                "Effect": "Allow",
                "Action": "iam:GetRole",
                "Resource": format!("arn:{}:iam::{}:role/*", p.partition, p.account_id)
            },
            {
                "Sid": "ReadRolePoliciesUnderOurPath",
                "Effect": "Allow",
                "Action": ["iam:GetRolePolicy", "iam:ListRolePolicies"],
                "Resource": roles
            },
            // A role is created only under our path, tagged for this cluster, and with the
            // permissions boundary: whatever policy is later put on it, it can do no more
            // than the boundary allows (execute-api:Invoke).
            {
                "Sid": "CreateBoundedRolesTaggedForThisCluster",
                "Effect": "Allow",
                "Action": "iam:CreateRole",
                "Resource": roles,
                "Condition": {
                    "StringEquals": {format!("aws:RequestTag/{TAG_CLUSTER}"): cluster},
                    "ArnLike": {"iam:PermissionsBoundary": p.boundary_arn()}
                }
            },
            // Tags on roles already this cluster's (spec.tags and --resource-tags change)...
            {
                "Sid": "TagThisClustersRoles",
                "Effect": "Allow",
                "Action": "iam:TagRole",
                "Resource": roles,
                "Condition": {
                    "StringEquals": {
                        format!("aws:RequestTag/{TAG_CLUSTER}"): cluster,
                        format!("aws:ResourceTag/{TAG_CLUSTER}"): cluster
                    }
                }
            },
            // ...and the tags a create carries (CreateRole with tags needs iam:TagRole, on a
            // role without tags yet). IAM cannot tell this from tagging an untagged role
            // someone else made under our path (iam:TagRole has no boundary key): such a
            // role can be tagged as this cluster's. Little follows: changing or deleting it
            // still needs the boundary (so only a role bounded as the operator's are), and
            // passing it to Cognito gives credentials only to the identities its own trust
            // admits, which cannot be changed without the boundary (README, threat model).
            // A role under /authedapi/ that is not the operator's should carry an
            // authedapi.dev/cluster tag of its own.
            {
                "Sid": "TagNewRolesForThisCluster",
                "Effect": "Allow",
                "Action": "iam:TagRole",
                "Resource": roles,
                "Condition": {
                    "StringEquals": {format!("aws:RequestTag/{TAG_CLUSTER}"): cluster},
                    "Null": {format!("aws:ResourceTag/{TAG_CLUSTER}"): "true"}
                }
            },
            // A tag removed from spec.tags (or --resource-tags) leaves this cluster's roles;
            // the operator's own tags never do.
            {
                "Sid": "UntagTheOrganisationsTagsFromThisClustersRoles",
                "Effect": "Allow",
                "Action": "iam:UntagRole",
                "Resource": roles,
                "Condition": {
                    "StringEquals": {format!("aws:ResourceTag/{TAG_CLUSTER}"): cluster},
                    "ForAllValues:StringNotLike": not_our_keys
                }
            },
            {
                "Sid": "ChangeThisClustersBoundedRoles",
                "Effect": "Allow",
                "Action": [
                    "iam:PutRolePolicy",
                    "iam:UpdateAssumeRolePolicy",
                    "iam:DeleteRolePolicy",
                    "iam:DeleteRole"
                ],
                "Resource": roles,
                "Condition": {
                    "StringEquals": {format!("aws:ResourceTag/{TAG_CLUSTER}"): cluster},
                    "ArnLike": boundary["ArnLike"]
                }
            },
            {
                "Sid": "PassOnlyThisClustersRolesToCognito",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": roles,
                "Condition": {
                    "StringEquals": {
                        "iam:PassedToService": COGNITO_SERVICE,
                        format!("iam:ResourceTag/{TAG_CLUSTER}"): cluster
                    }
                }
            },
            // OIDC providers: only for the allowed issuers.
            {
                "Sid": "ReadAllowedOidcProviders",
                "Effect": "Allow",
                "Action": "iam:GetOpenIDConnectProvider",
                "Resource": providers
            },
            {
                "Sid": "CreateOidcProvidersTaggedForThisCluster",
                "Effect": "Allow",
                "Action": "iam:CreateOpenIDConnectProvider",
                "Resource": providers,
                "Condition": {
                    "StringEquals": {
                        format!("aws:RequestTag/{TAG_CLUSTER}"): cluster,
                        format!("aws:RequestTag/{TAG_MANAGED_BY}"): MANAGED_BY
                    }
                }
            },
            // The tags a create carries (CreateOpenIDConnectProvider with tags needs
            // iam:TagOpenIDConnectProvider) on a provider that has no cluster tag yet. IAM
            // cannot tell this from tagging an untagged provider someone made by hand: a
            // provider the operator must never claim should carry an authedapi.dev/cluster
            // tag of its own (README, threat model).
            {
                "Sid": "TagNewOidcProvidersForThisCluster",
                "Effect": "Allow",
                "Action": "iam:TagOpenIDConnectProvider",
                "Resource": providers,
                "Condition": {
                    "StringEquals": {
                        format!("aws:RequestTag/{TAG_CLUSTER}"): cluster,
                        format!("aws:RequestTag/{TAG_MANAGED_BY}"): MANAGED_BY
                    },
                    "Null": {format!("aws:ResourceTag/{TAG_CLUSTER}"): "true"}
                }
            },
            // This cluster's records (which client ids it uses, and which it added) on any
            // provider authedapi manages; only its own keys, so no other cluster's record
            // and no provider's ownership can be changed.
            {
                "Sid": "RecordThisClustersClientIds",
                "Effect": "Allow",
                "Action": ["iam:TagOpenIDConnectProvider", "iam:UntagOpenIDConnectProvider"],
                "Resource": providers,
                "Condition": {
                    "StringEquals": {format!("aws:ResourceTag/{TAG_MANAGED_BY}"): MANAGED_BY},
                    "ForAllValues:StringLike": {"aws:TagKeys": [format!("{uses}*"), format!("{added}*")]}
                }
            },
            {
                "Sid": "AddClientIdsToAllowedOidcProviders",
                "Effect": "Allow",
                "Action": "iam:AddClientIDToOpenIDConnectProvider",
                "Resource": providers
            },
            // Client ids are removed, and providers deleted, only on providers this cluster
            // created (and the operator removes only the client ids it recorded adding).
            {
                "Sid": "ReleaseThisClustersOidcProviders",
                "Effect": "Allow",
                "Action": [
                    "iam:RemoveClientIDFromOpenIDConnectProvider",
                    "iam:DeleteOpenIDConnectProvider"
                ],
                "Resource": providers,
                "Condition": ours
            }
        ]
    });
    let crossings = host_wildcard_crossings(&p.allowed_issuers);
    if !crossings.is_empty() {
        let resources: Vec<String> = crossings
            .iter()
            .map(|c| {
                format!(
                    "arn:{}:iam::{}:oidc-provider/{c}",
                    p.partition, p.account_id
                )
            })
            .collect();
        policy["Statement"]
            .as_array_mut()
            .expect("statements")
            .push(json!({
                "Sid": "NoProvidersOfIssuersWithAPathInAnAllowedHost",
                "Effect": "Deny",
                "Action": PROVIDER_ACTIONS,
                "Resource": resources
            }));
    }
    if !p.allowed_functions.is_empty() {
        policy["Statement"]
            .as_array_mut()
            .expect("statements")
            .extend(lambda_statements(p));
    }
    policy
}

/// Lambda: only the functions the platform allows, and only API Gateway's grants on them.
/// (AddPermission has no condition key for the source ARN: the operator always scopes a
/// grant to its API; IAM cannot insist.)
fn lambda_statements(p: &PolicyParams) -> Vec<Value> {
    let only_api_gateway = json!({"StringEquals": {"lambda:Principal": APIGATEWAY_SERVICE}});
    vec![
        json!({
            "Sid": "ReadAllowedFunctionPolicies",
            "Effect": "Allow",
            "Action": ["lambda:GetPolicy", "lambda:GetFunction"],
            "Resource": p.allowed_functions
        }),
        json!({
            "Sid": "LetOnlyApiGatewayInvokeAllowedFunctions",
            "Effect": "Allow",
            "Action": "lambda:AddPermission",
            "Resource": p.allowed_functions,
            "Condition": only_api_gateway
        }),
        // The function's other grants (S3, SNS, other accounts) are never removed: AWS
        // reads lambda:Principal from the statement being removed.
        json!({
            "Sid": "RemoveOnlyApiGatewaysGrantsFromAllowedFunctions",
            "Effect": "Allow",
            "Action": "lambda:RemovePermission",
            "Resource": p.allowed_functions,
            "Condition": only_api_gateway
        }),
    ]
}

/// The permissions boundary of every role the operator creates: those roles exist to let
/// Cognito identities invoke API routes, and can never do anything else. Only APIs of this
/// account: IAM-authorized APIs of other accounts are out of reach, whatever their resource
/// policies say. Which APIs of the account are this cluster's IAM cannot say here:
/// execute-api:Invoke has no resource-tag condition key, and API ids are AWS's random
/// choice. (Narrowing to the `$default` stage, `*/$default/*`, is left out: the rig's IAM
/// judge does not match a wildcard API id followed by a path, so no test could prove it.)
pub fn boundary_policy(p: &PolicyParams) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "InvokeThisAccountsApisOnly",
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": format!("arn:{}:execute-api:*:{}:*", p.partition, p.account_id)
        }]
    })
}

/// The statement that lets the operator assume the tenants' roles (and nothing else in
/// their accounts: what it may do there is each role's own policy).
fn assume_statement(p: &PolicyParams) -> Value {
    json!({
        "Sid": "AssumeTenantRoles",
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": p.assume_roles
    })
}

/// The operator's policy in its own account: what it does there, and the roles it assumes.
pub fn operator_policy_with_roles(p: &PolicyParams) -> Value {
    if p.assume_only {
        return json!({"Version": "2012-10-17", "Statement": [assume_statement(p)]});
    }
    let mut policy = operator_policy(p);
    if !p.assume_roles.is_empty() {
        policy["Statement"]
            .as_array_mut()
            .expect("statements")
            .push(assume_statement(p));
    }
    policy
}

/// The trust policy of a tenant account's role: only the operator's role may assume it,
/// and only with the tenant's external id (AWS's guard against a confused deputy).
pub fn trust_policy(p: &PolicyParams) -> Value {
    let mut statement = json!({
        "Sid": "TheAuthedApiOperatorAssumesThisRole",
        "Effect": "Allow",
        "Principal": {"AWS": p.operator_role_arn.clone().unwrap_or_default()},
        "Action": "sts:AssumeRole"
    });
    if let Some(id) = &p.external_id {
        statement["Condition"] = json!({"StringEquals": {"sts:ExternalId": id}});
    }
    json!({"Version": "2012-10-17", "Statement": [statement]})
}

/// What `authedapi iam-policy` prints, or why it refuses to.
pub fn render(p: &PolicyParams, boundary: bool) -> Result<String, String> {
    p.validate()?;
    let value = if boundary {
        boundary_policy(p)
    } else if p.trust {
        trust_policy(p)
    } else {
        operator_policy_with_roles(p)
    };
    let mut text = serde_json::to_string_pretty(&value).expect("a policy is JSON");
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid}"))
    }

    #[test]
    fn every_statement_has_a_unique_sid() {
        let policy = operator_policy(&PolicyParams::default());
        let sids: Vec<&str> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        let mut unique = sids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(sids.len(), unique.len(), "{sids:?}");
    }

    #[test]
    fn the_cluster_value_is_in_every_tag_condition() {
        let p = PolicyParams {
            cluster_id: "prod-eu".into(),
            ..Default::default()
        };
        let text = render(&p, false).unwrap();
        assert!(!text.contains("\"default\""), "{text}");
        let policy = operator_policy(&p);
        let create = statement(&policy, "CreateHttpApisTaggedForThisCluster");
        assert_eq!(
            create["Condition"]["StringEquals"]["aws:RequestTag/authedapi.dev/cluster"],
            "prod-eu"
        );
    }

    #[test]
    fn roles_are_created_only_with_the_boundary() {
        let p = PolicyParams {
            account_id: "123456789012".into(),
            permissions_boundary_name: "team-boundary".into(),
            ..Default::default()
        };
        let policy = operator_policy(&p);
        let create = statement(&policy, "CreateBoundedRolesTaggedForThisCluster");
        assert_eq!(
            create["Condition"]["ArnLike"]["iam:PermissionsBoundary"],
            "arn:aws:iam::123456789012:policy/team-boundary"
        );
    }

    #[test]
    fn providers_are_limited_to_the_allowed_issuers() {
        let p = PolicyParams {
            allowed_issuers: vec!["https://id.example.com/".into(), "*.auth0.com".into()],
            ..Default::default()
        };
        let policy = operator_policy(&p);
        assert_eq!(
            statement(&policy, "AddClientIdsToAllowedOidcProviders")["Resource"],
            json!([
                "arn:aws:iam::*:oidc-provider/id.example.com",
                "arn:aws:iam::*:oidc-provider/*.auth0.com"
            ])
        );
    }

    #[test]
    fn provider_patterns_keep_their_paths_and_lower_case_hosts() {
        let p = PolicyParams {
            account_id: "123456789012".into(),
            allowed_issuers: vec![
                "*.okta.com/oauth2/*".into(),
                "https://Login.Example.com/realms/Team-A/".into(),
            ],
            ..Default::default()
        };
        let policy = operator_policy(&p);
        for sid in [
            "ReadAllowedOidcProviders",
            "CreateOidcProvidersTaggedForThisCluster",
            "AddClientIdsToAllowedOidcProviders",
            "ReleaseThisClustersOidcProviders",
        ] {
            assert_eq!(
                statement(&policy, sid)["Resource"],
                json!([
                    "arn:aws:iam::123456789012:oidc-provider/*.okta.com/oauth2/*",
                    "arn:aws:iam::123456789012:oidc-provider/login.example.com/realms/Team-A"
                ]),
                "{sid}"
            );
        }
    }

    #[test]
    fn untagging_is_only_of_this_clusters_resources_and_never_of_our_keys() {
        let policy = operator_policy(&PolicyParams::default());
        for (sid, action) in [
            (
                "UntagTheOrganisationsTagsFromThisClustersRoles",
                "iam:UntagRole",
            ),
            (
                "UntagTheOrganisationsTagsFromThisClustersIdentityPools",
                "cognito-identity:UntagResource",
            ),
        ] {
            let s = statement(&policy, sid);
            assert_eq!(s["Action"], action);
            assert_eq!(
                s["Condition"]["StringEquals"]["aws:ResourceTag/authedapi.dev/cluster"],
                "default"
            );
            assert_eq!(
                s["Condition"]["ForAllValues:StringNotLike"]["aws:TagKeys"],
                json!(["authedapi.dev/*"])
            );
        }
    }

    #[test]
    fn domains_are_created_regional_for_this_cluster_and_changed_only_when_its() {
        let policy = operator_policy(&PolicyParams::default());
        let create = statement(&policy, "CreateRegionalDomainNamesTaggedForThisCluster");
        assert_eq!(create["Resource"], "arn:aws:apigateway:*::/domainnames");
        assert_eq!(
            create["Condition"]["ForAllValues:StringEquals"]["apigateway:Request/EndpointType"],
            "REGIONAL"
        );
        assert_eq!(
            create["Condition"]["Null"]["apigateway:Request/EndpointType"],
            "false"
        );
        let condition = &create["Condition"]["StringEquals"];
        assert_eq!(condition["aws:RequestTag/authedapi.dev/cluster"], "default");
        assert_eq!(
            condition["aws:RequestTag/authedapi.dev/managed-by"],
            "authedapi"
        );
        let change = statement(&policy, "ChangeThisClustersDomainNames");
        assert_eq!(change["Resource"], "arn:aws:apigateway:*::/domainnames/*");
        assert_eq!(
            change["Condition"]["StringEquals"]["aws:ResourceTag/authedapi.dev/cluster"],
            "default"
        );
    }

    #[test]
    fn vpc_links_are_created_tagged_and_changed_only_when_this_clusters() {
        let policy = operator_policy(&PolicyParams {
            account_id: "123456789012".into(),
            ..Default::default()
        });
        let create = statement(&policy, "CreateVpcLinksTaggedForThisCluster");
        assert_eq!(create["Resource"], "arn:aws:apigateway:*::/vpclinks");
        assert_eq!(
            create["Condition"]["StringEquals"]["aws:RequestTag/authedapi.dev/cluster"],
            "default"
        );
        let change = statement(&policy, "ChangeThisClustersVpcLinks");
        assert_eq!(change["Resource"], "arn:aws:apigateway:*::/vpclinks/*");
        assert_eq!(
            change["Condition"]["StringEquals"]["aws:ResourceTag/authedapi.dev/cluster"],
            "default"
        );
        let role = statement(&policy, "CreateApiGatewaysServiceLinkedRole");
        assert_eq!(
            role["Resource"],
            "arn:aws:iam::123456789012:role/aws-service-role/ops.apigateway.amazonaws.com/AWSServiceRoleForAPIGateway"
        );
        assert_eq!(
            role["Condition"]["StringEquals"]["iam:AWSServiceName"],
            "ops.apigateway.amazonaws.com"
        );
    }

    #[test]
    fn the_boundary_allows_invoking_this_accounts_apis_only() {
        let boundary = boundary_policy(&PolicyParams {
            account_id: "123456789012".into(),
            ..Default::default()
        });
        assert_eq!(boundary["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(boundary["Statement"][0]["Action"], "execute-api:Invoke");
        assert_eq!(
            boundary["Statement"][0]["Resource"],
            "arn:aws:execute-api:*:123456789012:*"
        );
    }

    fn sids(policy: &Value) -> Vec<&str> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn by_default_no_function_is_reachable_and_the_defaults_are_named() {
        let p = PolicyParams::default();
        let policy = operator_policy(&p);
        assert!(
            !policy.to_string().contains("lambda:"),
            "{}",
            render(&p, false).unwrap()
        );
        let notes = p.notes(false).join("\n");
        assert!(notes.contains("--account-id"), "{notes}");
        assert!(notes.contains("--allowed-function"), "{notes}");
        let named = PolicyParams {
            account_id: "123456789012".into(),
            allowed_functions: vec!["arn:aws:lambda:*:123456789012:function:team-a-*".into()],
            ..Default::default()
        };
        assert!(named.notes(false).is_empty(), "{:?}", named.notes(false));
        assert!(
            sids(&operator_policy(&named)).contains(&"LetOnlyApiGatewayInvokeAllowedFunctions")
        );
    }

    #[test]
    fn function_patterns_must_name_one_account() {
        let with = |account: &str, function: &str| PolicyParams {
            account_id: account.into(),
            allowed_functions: vec![function.into()],
            ..Default::default()
        };
        for (account, function) in [
            ("*", "*"),
            ("*", "arn:aws:lambda:*:*:function:*"),
            ("*", "arn:aws:lambda:*:12345678901*:function:*"),
            ("*", "arn:aws:lambda:us-east-1:123456789012:function:"),
            ("*", "arn:aws:s3:::bucket"),
            ("*", "arn:aws-cn:lambda:*:123456789012:function:x"),
            (
                "123456789012",
                "arn:aws:lambda:us-east-1:210987654321:function:x",
            ),
        ] {
            let refusal = render(&with(account, function), false).unwrap_err();
            assert!(refusal.contains(function), "{function}: {refusal}");
        }
        for (account, function) in [
            ("*", "arn:aws:lambda:*:123456789012:function:*"),
            (
                "123456789012",
                "arn:aws:lambda:eu-west-1:123456789012:function:team-?-*",
            ),
        ] {
            render(&with(account, function), false).unwrap();
        }
    }

    #[test]
    fn only_api_gateways_grants_are_added_or_removed() {
        let policy = operator_policy(&PolicyParams {
            allowed_functions: vec!["arn:aws:lambda:*:123456789012:function:x".into()],
            ..Default::default()
        });
        for sid in [
            "LetOnlyApiGatewayInvokeAllowedFunctions",
            "RemoveOnlyApiGatewaysGrantsFromAllowedFunctions",
        ] {
            assert_eq!(
                statement(&policy, sid)["Condition"],
                json!({"StringEquals": {"lambda:Principal": "apigateway.amazonaws.com"}}),
                "{sid}"
            );
        }
        assert_eq!(
            statement(&policy, "ReadAllowedFunctionPolicies")["Action"],
            json!(["lambda:GetPolicy", "lambda:GetFunction"])
        );
    }

    #[test]
    fn host_wildcards_are_denied_from_reaching_into_a_path() {
        assert_eq!(
            host_wildcard_crossings(&["*.auth0.com".into()]),
            ["*/*.auth0.com"]
        );
        assert_eq!(
            host_wildcard_crossings(&[
                "https://*.okta.com/oauth2/*".into(),
                "login-?.example.com".into(),
                "login.example.com/realms/*".into(),
            ]),
            ["*/*.okta.com/oauth2/*", "login-/.example.com"]
        );
        let policy = operator_policy(&PolicyParams {
            account_id: "123456789012".into(),
            ..Default::default()
        });
        let deny = statement(&policy, "NoProvidersOfIssuersWithAPathInAnAllowedHost");
        assert_eq!(deny["Effect"], "Deny");
        assert_eq!(
            deny["Resource"],
            json!(["arn:aws:iam::123456789012:oidc-provider/*/*.auth0.com"])
        );
        // Every provider action the policy allows is denied there.
        let allowed: std::collections::BTreeSet<&str> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Effect"] == "Allow")
            .flat_map(|s| match &s["Action"] {
                Value::String(a) => vec![a.as_str()],
                Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            })
            .filter(|a| a.contains("OpenIDConnectProvider"))
            .collect();
        let denied: std::collections::BTreeSet<&str> = deny["Action"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(allowed, denied);
        // An exact host has nothing to reach through.
        let exact = operator_policy(&PolicyParams {
            allowed_issuers: vec!["login.example.com".into()],
            ..Default::default()
        });
        assert!(!sids(&exact).contains(&"NoProvidersOfIssuersWithAPathInAnAllowedHost"));
    }
}
