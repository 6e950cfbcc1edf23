//! `authedapi controller`: the kube-rs Controller on AuthedApi, with its metrics server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, reflector};
use kube::runtime::watcher;

use crate::api::AuthedApi;
use crate::aws::SharedInterceptor;
use crate::aws::provider::AwsProvider;
use crate::aws::ratelimit::{Limit, Limits, parse_limit};
use crate::leader;
use crate::metrics::{self, CountAwsRequests, Metrics};
use crate::readiness::{Cache, Readiness, mark_filled};
use crate::reconcile::cluster::KubeCluster;
use crate::reconcile::context::Settings;
use crate::reconcile::{self, Context};
use crate::tenant::{AuthedApiTenant, Defaults};

/// Settings of the controller (flags, with environment fallbacks).
#[derive(clap::Args, Clone, Debug)]
pub struct ControllerArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "AUTHEDAPI_NAMESPACE")]
    pub namespace: Option<String>,

    /// Watch only AuthedApis whose labels match this selector (e.g.
    /// `team in (a,b)`), as Flux's --watch-label-selector: several operators can then
    /// share a cluster, or an operator can be tried on a few objects first.
    #[arg(long, env = "AUTHEDAPI_WATCH_LABEL_SELECTOR")]
    pub watch_label_selector: Option<String>,

    /// How often every object is compared with AWS and drift corrected, e.g. 10m, 30s, 1h.
    #[arg(long, env = "AUTHEDAPI_RESYNC", default_value = "10m", value_parser = parse_duration)]
    pub resync: Duration,

    /// How many objects are reconciled at once.
    #[arg(long, env = "AUTHEDAPI_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,

    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, env = "AUTHEDAPI_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Names this cluster in the `authedapi.dev/cluster` tag, so operators of several
    /// clusters sharing one AWS account keep apart.
    #[arg(long, env = "AUTHEDAPI_CLUSTER_ID", default_value = "default", value_parser = cluster_id)]
    pub cluster_id: String,

    /// Client-side rate limit per AWS service, SERVICE=RATE[:BURST] (repeatable or
    /// comma-separated), e.g. apigateway=10:40,iam=5. Services: apigateway,
    /// cognito-identity, iam, lambda, sts.
    #[arg(
        long = "aws-rate-limit",
        env = "AUTHEDAPI_AWS_RATE_LIMITS",
        value_delimiter = ',',
        default_value = "apigateway=10:40",
        value_parser = parse_limit
    )]
    pub aws_rate_limits: Vec<(String, Limit)>,

    /// Attempts per AWS call before a reconcile gives up on it (throttling, 5xx and
    /// network errors are retried with exponential backoff and jitter, from 100ms to 5s).
    #[arg(long, env = "AUTHEDAPI_AWS_MAX_ATTEMPTS", default_value_t = 8)]
    pub aws_max_attempts: u32,

    /// Run only while holding the `authedapi-leader` Lease (for more than one replica).
    #[arg(long, env = "AUTHEDAPI_LEADER_ELECT")]
    pub leader_elect: bool,

    /// How long a leader's lease lasts without renewal; a standby takes over after it.
    #[arg(long, env = "AUTHEDAPI_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// Namespace of the Lease (default: the pod's namespace, POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,

    /// The permissions boundary every IAM role the operator creates carries: a policy
    /// ARN, or the name of a policy in the account (create it from
    /// `authedapi iam-policy --boundary`, or deploy/aws-permissions-boundary.json).
    #[arg(
        long,
        env = "AUTHEDAPI_PERMISSIONS_BOUNDARY",
        default_value = crate::iam_policy::DEFAULT_BOUNDARY_NAME
    )]
    pub permissions_boundary: String,

    /// OIDC issuers AuthedApis may federate where no AuthedApiTenant says otherwise,
    /// comma-separated: hosts, or hosts and paths, with `*` wildcards (e.g. `*.auth0.com`,
    /// `*.okta.com/oauth2/*`). A host alone admits only issuers without a path.
    #[arg(
        long,
        env = "AUTHEDAPI_ALLOWED_ISSUERS",
        value_delimiter = ',',
        default_value = "*.auth0.com"
    )]
    pub allowed_issuers: Vec<String>,

    /// Lambda function ARN patterns (`*` wildcards) routes may target where no
    /// AuthedApiTenant says otherwise, comma-separated. Default: none.
    #[arg(long, env = "AUTHEDAPI_ALLOWED_FUNCTIONS", value_delimiter = ',')]
    pub allowed_functions: Vec<String>,

    /// Private target ARN patterns (`*` wildcards: ALB/NLB listeners, Cloud Map services)
    /// routes may reach through a VPC link where no AuthedApiTenant says otherwise,
    /// comma-separated. Default: none.
    #[arg(long, env = "AUTHEDAPI_ALLOWED_PRIVATE_TARGETS", value_delimiter = ',')]
    pub allowed_private_targets: Vec<String>,

    /// The share (0 to 1) of each account's API Gateway rate limit that drift checks of
    /// unchanged objects may use; creates, updates and deletes go first. When checking
    /// every object each --resync would take more, the resync stretches (metric
    /// authedapi_resync_period_seconds, and a log line).
    #[arg(
        long,
        env = "AUTHEDAPI_DRIFT_CHECK_SHARE",
        default_value_t = 0.5,
        value_parser = parse_share
    )]
    pub drift_check_share: f64,

    /// Whether namespaces no AuthedApiTenant maps to an AWS account (spec.aws) use the
    /// operator's own account (`allow`), or stall with NoAccount (`deny`: every team's
    /// resources live in its own account).
    #[arg(
        long,
        env = "AUTHEDAPI_OWN_ACCOUNT",
        value_enum,
        default_value = "allow"
    )]
    pub own_account: OwnAccount,

    /// The organisation's tags for every AWS resource the operator creates (API, stage,
    /// identity pool, roles; the shared OIDC provider at its creation), KEY=VALUE,
    /// comma-separated; an AuthedApi's spec.tags win over them. Keys `authedapi.dev/...`
    /// and `aws:...` are refused, and so is more than 46 tags.
    #[arg(
        long,
        env = "AUTHEDAPI_RESOURCE_TAGS",
        value_delimiter = ',',
        value_parser = parse_tag
    )]
    pub resource_tags: Vec<(String, String)>,
}

/// A share of a rate: more than 0, at most 1.
fn parse_share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        _ => Err(format!(
            "{text:?}: a share is a number above 0 and at most 1, e.g. 0.5"
        )),
    }
}

/// Whether the operator's own AWS account serves namespaces no tenant maps to one.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnAccount {
    Allow,
    Deny,
}

/// One `KEY=VALUE` of --resource-tags (split at the first `=`), as AWS would take it.
fn parse_tag(text: &str) -> Result<(String, String), String> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(format!("{text:?}: use KEY=VALUE"));
    };
    let (key, value) = (key.trim(), value.trim());
    crate::plan::check_tag(key, value)?;
    Ok((key.to_owned(), value.to_owned()))
}

/// --resource-tags as a map: each key once (IAM compares keys without case), and room
/// left for the operator's own tags within AWS's 50.
pub fn resource_tags(pairs: &[(String, String)]) -> Result<BTreeMap<String, String>, String> {
    let mut tags = BTreeMap::new();
    for (key, value) in pairs {
        if tags.keys().any(|k: &String| k.eq_ignore_ascii_case(key)) {
            return Err(format!(
                "--resource-tags names {key:?} twice (keys differing only in case are one key in IAM)"
            ));
        }
        tags.insert(key.clone(), value.clone());
    }
    let room = crate::plan::TAGS_MAX - crate::plan::OUR_TAGS;
    if tags.len() > room {
        return Err(format!(
            "--resource-tags has {} tags; AWS allows {} per resource and the operator sets {} \
             of its own: at most {room}",
            tags.len(),
            crate::plan::TAGS_MAX,
            crate::plan::OUR_TAGS
        ));
    }
    Ok(tags)
}

/// A cluster id is a tag value on every AWS resource: 1 to 128 characters AWS accepts in
/// one (letters, digits and `_.:/=+-@`).
fn cluster_id(text: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.:/=+-@".contains(c);
    if (1..=128).contains(&text.len()) && text.chars().all(allowed) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?}: use 1 to 128 letters, digits or _.:/=+-@ (it becomes an AWS tag value)"
        ))
    }
}

/// "90s", "10m", "1h", "1h30m" (humantime's units) or plain seconds; never zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("{text:?}: {e}; use e.g. 90s, 10m or 1h30m"))?,
    };
    if duration.is_zero() {
        return Err(format!("{text:?}: use a positive duration, e.g. 10m"));
    }
    Ok(duration)
}

/// What the operator never reads, removed from a watched object before it is cached.
pub fn slim(obj: &mut AuthedApi) {
    obj.managed_fields_mut().clear();
    obj.annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
}

/// Run the controller until SIGTERM/SIGINT.
pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let resource_tags = resource_tags(&args.resource_tags).map_err(anyhow::Error::msg)?;
    let client = kube::Client::try_default().await?;
    let api: Api<AuthedApi> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };

    let metrics = Arc::new(Metrics::default());
    #[cfg_attr(not(feature = "test-hooks"), allow(unused_mut))]
    let mut interceptors = vec![SharedInterceptor::new(CountAwsRequests::new(
        metrics.clone(),
    ))];
    #[cfg(feature = "test-hooks")]
    if let Some(crash) = crate::testhooks::CrashAfter::from_env() {
        interceptors.push(SharedInterceptor::new(crash));
    }
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(args.aws_max_attempts.max(1))
                .with_initial_backoff(Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(5)),
        )
        .load()
        .await;
    // Below each service's rate limiter (which wraps the config's HTTP client), time how
    // long every request waited for it.
    let below_limiter = sdk
        .http_client()
        .unwrap_or_else(crate::aws::ratelimit::default_http_client);
    let sdk = sdk
        .to_builder()
        .http_client(metrics::TimeLimiterWait::new(
            below_limiter,
            metrics.clone(),
        ))
        .build();
    let limits = Limits(args.aws_rate_limits.iter().cloned().collect());
    // Sessions in tenants' accounts say which operator they are (CloudTrail shows it).
    let session_name: String = format!("authedapi-{}", args.cluster_id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let aws = AwsProvider::new(sdk, interceptors, limits, &session_name)
        .with_drift_share(args.drift_check_share);

    // The cache holds each object without what the operator never reads (managedFields,
    // kubectl's last-applied copy of the spec): most of an object's size at scale.
    let (store, writer) = reflector::store();
    let mut watched = watcher::Config::default().any_semantic();
    if let Some(selector) = &args.watch_label_selector {
        watched = watched.labels(selector);
    }
    let readiness = Arc::new(Readiness::default());
    let objects = mark_filled(
        watcher(api, watched)
            .default_backoff()
            .modify(slim)
            .reflect(writer),
        readiness.clone(),
        Cache::AuthedApis,
    )
    .applied_objects();
    let controller = Controller::for_stream(objects, store.clone())
        .with_config(ControllerConfig::default().concurrency(args.concurrency));
    metrics.count_objects_in(store.clone());
    // The platform's limits and accounts: kept in a store; each change, once in the
    // store, starts a new tenants epoch (so no object takes the steady-state shortcut on
    // what it last saw) and looks at every object again (tenants are few and change
    // rarely).
    let tenants_api: Api<AuthedApiTenant> = Api::all(client.clone());
    let (tenants, tenants_writer) = reflector::store();
    let tenants_epoch = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (tenant_changed, tenant_changes) = futures::channel::mpsc::unbounded::<()>();
    let tenants_cache = {
        let epoch = tenants_epoch.clone();
        tokio::spawn(
            mark_filled(
                reflector(
                    tenants_writer,
                    watcher(tenants_api, watcher::Config::default()),
                )
                .default_backoff(),
                readiness.clone(),
                Cache::Tenants,
            )
            .for_each(move |_| {
                epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = tenant_changed.unbounded_send(());
                futures::future::ready(())
            }),
        )
    };
    let controller = controller.reconcile_all_on(tenant_changes);
    let reporter = Reporter {
        controller: "authedapi".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let recorder = Recorder::new(client.clone(), reporter.clone());
    let settings = Settings {
        cluster_id: args.cluster_id.clone(),
        resync: args.resync,
        permissions_boundary: args.permissions_boundary.clone(),
        defaults: Defaults {
            allowed_functions: args.allowed_functions.clone(),
            allowed_private_targets: args.allowed_private_targets.clone(),
            allowed_issuers: args.allowed_issuers.clone(),
            own_account: args.own_account == OwnAccount::Allow,
        },
        resource_tags,
        // Half the workers at most: a create never waits for a worker behind drift
        // checks when AWS (or the emulator) is slow rather than rate-limited.
        drift_check_slots: match args.concurrency {
            0 => tokio::sync::Semaphore::MAX_PERMITS,
            n => usize::from(n / 2).max(1),
        },
    };
    let cluster = Arc::new(KubeCluster {
        client: client.clone(),
        recorder,
        reporter,
    });
    let ctx = Arc::new(
        Context::new(
            client,
            cluster,
            aws,
            settings,
            metrics.clone(),
            store.clone(),
            tenants,
        )
        .with_tenants_epoch(tenants_epoch),
    );

    let server = tokio::spawn(metrics::serve(
        args.metrics_addr,
        metrics.clone(),
        readiness.clone(),
    ));
    let leadership = if args.leader_elect {
        // A standby is healthy and ready; it just does not reconcile.
        readiness.standby();
        let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
            format!("authedapi-{}-{}", std::process::id(), rand::random::<u32>())
        });
        Some(
            leader::acquire(
                ctx.client.clone(),
                &args.lease_namespace,
                &identity,
                args.lease_duration,
            )
            .await?,
        )
    } else {
        None
    };
    tracing::info!(
        namespace = args.namespace.as_deref().unwrap_or("(all)"),
        label_selector = args.watch_label_selector.as_deref().unwrap_or("(none)"),
        resync = ?args.resync,
        concurrency = args.concurrency,
        cluster_id = %args.cluster_id,
        "starting the AuthedApi controller"
    );
    let mut controller = controller.shutdown_on_signal();
    if let Some(leadership) = &leadership {
        controller = controller.graceful_shutdown_on(leadership.lost());
    }
    controller
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(%object, "reconciled"),
                Err(e) => tracing::debug!("reconcile: {e}"),
            }
        })
        .await;
    server.abort();
    tenants_cache.abort();
    if let Some(leadership) = leadership {
        if !leadership.is_held() {
            // Another replica may be reconciling now: stop, and start again as a standby.
            anyhow::bail!("lost the leader lease; exiting");
        }
        leadership.release().await;
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_the_annotations_it_reads_and_drops_managed_fields() {
        let mut obj: AuthedApi = serde_json::from_value(serde_json::json!({
            "apiVersion": "authedapi.dev/v1alpha1", "kind": "AuthedApi",
            "metadata": {
                "name": "a", "namespace": "n",
                "annotations": {
                    "authedapi.dev/paused": "true",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"spec\": {}}"
                },
                "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {}}]
            },
            "spec": {"stage": "dev", "auth0": {"domain": "x.auth0.com", "clientId": "c"}, "routes": []}
        }))
        .unwrap();
        slim(&mut obj);
        assert!(obj.managed_fields().is_empty());
        assert_eq!(
            obj.annotations().keys().collect::<Vec<_>>(),
            ["authedapi.dev/paused"]
        );
    }

    #[test]
    fn cluster_ids_are_valid_tag_values() {
        assert_eq!(cluster_id("prod-eu-1"), Ok("prod-eu-1".into()));
        assert!(cluster_id("").is_err());
        assert!(cluster_id("has space").is_err());
        assert!(cluster_id(&"a".repeat(129)).is_err());
    }

    #[test]
    fn resource_tags_are_key_value_pairs_aws_would_take_and_never_ours() {
        assert_eq!(
            parse_tag("cost-center=a=b"),
            Ok(("cost-center".into(), "a=b".into()))
        );
        assert_eq!(parse_tag("env="), Ok(("env".into(), String::new())));
        for bad in [
            "no-value",
            "=v",
            "authedapi.dev/cluster=x",
            "AWS:created=x",
            "k=semi;colon",
        ] {
            assert!(parse_tag(bad).is_err(), "{bad}");
        }
        let pairs = |n: usize| -> Vec<(String, String)> {
            (0..n).map(|i| (format!("k{i}"), "v".into())).collect()
        };
        assert_eq!(resource_tags(&pairs(46)).unwrap().len(), 46);
        assert!(
            resource_tags(&pairs(47))
                .unwrap_err()
                .contains("at most 46")
        );
        let twice = vec![("Team".into(), "a".into()), ("team".into(), "b".into())];
        assert!(resource_tags(&twice).unwrap_err().contains("twice"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5m3").is_err());
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("10x").unwrap_err().contains("10m"));
    }
}
