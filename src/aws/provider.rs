//! AWS clients per account and region. The operator's own credentials act in its own
//! account and assume each tenant's role in the others (and are used for nothing else
//! there); each assumed role has its own credentials, refreshed by the SDK before they
//! expire. Rate limits are per account, region and service, as AWS's quotas are.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use tokio::sync::OnceCell;

use super::budget::Bucket;
use super::ratelimit::{self, Limiters, Limits};
use super::{AwsClients, AwsError, SharedInterceptor};
use crate::tenant::TenantAws;

/// Where an object's resources live.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Account {
    /// The operator's own account, with its own credentials.
    Own,
    /// Another account, through a role the operator assumes.
    Assumed(TenantAws),
}

/// Why an account cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Asking STS who the operator is failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The role could not be assumed: AWS's answer.
    #[error("cannot assume {role_arn}: {message}")]
    AssumeRole { role_arn: String, message: String },
    /// The tenant's rate limits do not parse.
    #[error("{0}")]
    RateLimits(String),
}

/// Clients acting in one account.
#[derive(Clone)]
pub struct InAccount {
    pub clients: AwsClients,
    /// The 12-digit account id.
    pub account: String,
}

/// One assumed role: the configuration whose credentials are that role's, checked once.
struct Assumed {
    config: SdkConfig,
    provider: SharedCredentialsProvider,
    checked: OnceCell<()>,
}

/// What an in-memory fake stands for: one account's clients, or a role that cannot be
/// assumed.
#[derive(Clone)]
enum Fixed {
    Clients(InAccount),
    Refused(String),
}

pub struct AwsProvider {
    base: SdkConfig,
    interceptors: Vec<SharedInterceptor>,
    limits: Limits,
    session_name: String,
    clients: Mutex<HashMap<(Account, String), AwsClients>>,
    /// One token bucket per (account, region) and service: two roles in one account share.
    limiters: Mutex<HashMap<(String, String), Limiters>>,
    roles: Mutex<HashMap<TenantAws, Arc<Assumed>>>,
    own_account: OnceCell<String>,
    /// In-memory fakes by account (tests): every region gets them.
    fixed: HashMap<Account, Fixed>,
    /// The share of API Gateway's bucket drift-check reads may use.
    drift_share: Option<f64>,
}

impl AwsProvider {
    /// Clients built from `base` (the operator's own credentials), each request through
    /// `interceptors` and `limits`; assumed sessions are named `session_name` unless the
    /// tenant names them.
    pub fn new(
        base: SdkConfig,
        interceptors: Vec<SharedInterceptor>,
        limits: Limits,
        session_name: &str,
    ) -> Self {
        Self {
            base,
            interceptors,
            limits,
            session_name: session_name.to_owned(),
            clients: Mutex::new(HashMap::new()),
            limiters: Mutex::new(HashMap::new()),
            roles: Mutex::new(HashMap::new()),
            own_account: OnceCell::new(),
            fixed: HashMap::new(),
            drift_share: None,
        }
    }

    /// Drift-check reads of API Gateway get at most `share` of each account's bucket.
    pub fn with_drift_share(mut self, share: f64) -> Self {
        self.drift_share = Some(share);
        self
    }

    /// The rate (requests per second) drift checks of API Gateway may use in `account`
    /// and `region`: its bucket's, or before that bucket exists (just started), what the
    /// operator's own limit gives.
    pub fn drift_rate(&self, account: &str, region: &str) -> Option<f64> {
        match self.bucket(account, region) {
            Some(bucket) => bucket.drift_rate(),
            None => Some(self.limits.0.get("apigateway")?.per_second * self.drift_share?),
        }
    }

    /// Take one drift check's API Gateway reads in `account` and `region` from the drift
    /// share, or say how long until it has them (see [`Bucket::admit_drift_check`]).
    pub fn admit_drift_check(
        &self,
        account: &str,
        region: &str,
        reads: u32,
    ) -> Result<(), Duration> {
        match self.bucket(account, region) {
            Some(bucket) => bucket.admit_drift_check(reads),
            None => Ok(()),
        }
    }

    fn bucket(&self, account: &str, region: &str) -> Option<Bucket> {
        self.limiters
            .lock()
            .expect("limiters lock")
            .get(&(account.to_owned(), region.to_owned()))?
            .of("apigateway")
    }

    /// `clients` for the operator's own `account` in every region, `region` the default.
    pub fn fixed(clients: AwsClients, account: &str, region: Option<&str>) -> Self {
        let mut base = SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest());
        if let Some(region) = region {
            base = base.region(Region::new(region.to_owned()));
        }
        let mut provider = Self::new(base.build(), Vec::new(), Limits::none(), "test");
        provider.own_account = OnceCell::new_with(Some(account.to_owned()));
        provider.fixed.insert(
            Account::Own,
            Fixed::Clients(InAccount {
                clients,
                account: account.to_owned(),
            }),
        );
        provider
    }

    /// Also `clients` for the role `aws` (a fake).
    pub fn with_fixed(mut self, aws: TenantAws, clients: AwsClients) -> Self {
        let account = aws.account().to_owned();
        self.fixed.insert(
            Account::Assumed(aws),
            Fixed::Clients(InAccount { clients, account }),
        );
        self
    }

    /// The role `aws` cannot be assumed: every use answers `message` (a fake).
    pub fn with_refused(mut self, aws: TenantAws, message: &str) -> Self {
        self.fixed
            .insert(Account::Assumed(aws), Fixed::Refused(message.to_owned()));
        self
    }

    /// The operator's own region (AWS_REGION, profile, IMDS), if it has one.
    pub fn default_region(&self) -> Option<String> {
        self.base.region().map(|r| r.to_string())
    }

    /// Clients acting in `account`, in `region`.
    pub async fn in_account(
        &self,
        account: &Account,
        region: &str,
    ) -> Result<InAccount, AccountError> {
        if !self.fixed.is_empty() {
            return match (self.fixed.get(account), account) {
                (Some(Fixed::Clients(c)), _) => Ok(c.clone()),
                (Some(Fixed::Refused(message)), Account::Assumed(aws)) => {
                    Err(AccountError::AssumeRole {
                        role_arn: aws.role_arn.clone(),
                        message: message.clone(),
                    })
                }
                _ => panic!("the fake has no clients for {account:?}"),
            };
        }
        match account {
            Account::Own => {
                let id = self
                    .own_account
                    .get_or_try_init(|| async {
                        let config = self
                            .base
                            .to_builder()
                            .region(Region::new(region.to_owned()))
                            .build();
                        let sts = super::sts::Sts::new(&config, &self.interceptors, "");
                        Ok::<_, AwsError>(sts.caller_identity().await?.account)
                    })
                    .await?
                    .clone();
                let clients = self.clients_for(account, &self.base, &id, region, &self.limits);
                Ok(InAccount {
                    clients,
                    account: id,
                })
            }
            Account::Assumed(aws) => {
                let assumed = self.assumed(aws).await;
                // A role that cannot be assumed is said once, with AWS's words, rather
                // than as every call's credentials error.
                assumed
                    .checked
                    .get_or_try_init(|| async {
                        assumed
                            .provider
                            .provide_credentials()
                            .await
                            .map(|_| ())
                            .map_err(|e| AccountError::AssumeRole {
                                role_arn: aws.role_arn.clone(),
                                message: aws_smithy_types::error::display::DisplayErrorContext(&e)
                                    .to_string(),
                            })
                    })
                    .await?;
                let limits = self.tenant_limits(aws)?;
                let clients =
                    self.clients_for(account, &assumed.config, aws.account(), region, &limits);
                Ok(InAccount {
                    clients,
                    account: aws.account().to_owned(),
                })
            }
        }
    }

    /// The operator's limits with the tenant's on top.
    fn tenant_limits(&self, aws: &TenantAws) -> Result<Limits, AccountError> {
        let mut limits = self.limits.clone();
        for text in &aws.rate_limits {
            let (service, limit) = ratelimit::parse_limit(text)
                .map_err(|e| AccountError::RateLimits(format!("the tenant's rateLimits: {e}")))?;
            limits.0.insert(service, limit);
        }
        Ok(limits)
    }

    /// The clients of `account` in `region`, built once; their limiters, retry quota and
    /// metrics label are those of the account id `account_key` in `region` (the limiters
    /// made with `limits` by the first to ask).
    fn clients_for(
        &self,
        account: &Account,
        config: &SdkConfig,
        account_key: &str,
        region: &str,
        limits: &Limits,
    ) -> AwsClients {
        let mut clients = self.clients.lock().expect("clients lock");
        clients
            .entry((account.clone(), region.to_owned()))
            .or_insert_with(|| {
                let limiters = self
                    .limiters
                    .lock()
                    .expect("limiters lock")
                    .entry((account_key.to_owned(), region.to_owned()))
                    .or_insert_with(|| Limiters::new(limits, self.drift_share))
                    .clone();
                let config = config
                    .to_builder()
                    .region(Region::new(region.to_owned()))
                    .build();
                let mut interceptors = self.interceptors.clone();
                interceptors.push(SharedInterceptor::new(crate::metrics::InAccount(
                    account_key.to_owned(),
                )));
                AwsClients::with_limiters(&config, &interceptors, &limiters, account_key)
            })
            .clone()
    }

    /// The configuration acting as the role `aws`, made once.
    async fn assumed(&self, aws: &TenantAws) -> Arc<Assumed> {
        if let Some(found) = self.roles.lock().expect("roles lock").get(aws) {
            return found.clone();
        }
        let mut builder = AssumeRoleProvider::builder(&aws.role_arn)
            .session_name(aws.session_name.as_deref().unwrap_or(&self.session_name))
            .configure(&self.base);
        if let Some(id) = &aws.external_id {
            builder = builder.external_id(id);
        }
        let provider = SharedCredentialsProvider::new(builder.build().await);
        let config = self
            .base
            .to_builder()
            .credentials_provider(provider.clone())
            .build();
        let made = Arc::new(Assumed {
            config,
            provider,
            checked: OnceCell::new(),
        });
        self.roles
            .lock()
            .expect("roles lock")
            .entry(aws.clone())
            .or_insert(made)
            .clone()
    }
}
