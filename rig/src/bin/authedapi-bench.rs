//! `authedapi-bench`: how fast the operator gets N AuthedApis to Ready, how many AWS
//! calls that costs against the minimum, what a resync of unchanged objects costs, and
//! the operator's memory and CPU; many accounts each under its own API Gateway quota
//! (`--accounts`); a create arriving during a full resync (`--resync-create`). Run by
//! `hack/bench.sh` (release build), which writes the results to BENCHMARKS.md. Not a test:
//! it asserts nothing, it measures.
//!
//! Each scenario can be run alone: `--n`, `--capped-n`, `--accounts AxN`, `--resync-create
//! N`. Given none of them, all run with their defaults.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use authedapi_rig::emulator::Account;
use authedapi_rig::fault_proxy::{FORWARDED, FaultProxy, RATE_LIMITED};
use authedapi_rig::operator_identity::{PolicyOptions, provision_tenant_role, tenant_role_arn};
use authedapi_rig::process::Supervised;
use authedapi_rig::{
    ControlPlane, Emulator, OperatorIdentity, TestNamespace, free_port, functions, repo_root,
};
use clap::Parser;
use futures::TryStreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// The operator binary (release build).
    #[arg(long, default_value = "target/release/authedapi")]
    operator: PathBuf,
    /// Object counts to run, comma-separated (default, when no scenario is named:
    /// 1,100,1000).
    #[arg(long, value_delimiter = ',')]
    n: Option<Vec<usize>>,
    /// Which objects `--n` runs: 2 (the seed), 10 (ten routes), or both.
    #[arg(long, value_delimiter = ',', default_value = "2,10")]
    routes: Vec<usize>,
    /// Object counts for the runs under API Gateway's 10 requests/s quota (default, when
    /// no scenario is named: 1,100).
    #[arg(long, value_delimiter = ',')]
    capped_n: Option<Vec<usize>>,
    /// ACCOUNTSxSEEDS: that many tenant accounts, each with SEEDS seeds in a namespace of
    /// its own, API Gateway capped at 10 requests/s per account, one operator for all
    /// (default, when no scenario is named: 10x100).
    #[arg(long, value_parser = accounts_shape)]
    accounts: Option<(usize, usize)>,
    /// N seeds Ready in one account (API Gateway capped at 10 requests/s), the operator
    /// restarted, then one more seed: its time to Ready while every object's drift check
    /// is due (default, when no scenario is named: 500).
    #[arg(long)]
    resync_create: Option<usize>,
    /// N seeds with the operator as a Pod from its image (`make image`) on the rig's node,
    /// installed by its chart with the chart's default resources (memory limit 256 Mi):
    /// its memory against that limit, and its restarts (default, when no scenario is
    /// named: 1000).
    #[arg(long)]
    node: Option<usize>,
    /// The image the node scenario runs (hack/image.sh's archive).
    #[arg(long, default_value = "target/image/authedapi-0.1.0.oci.tar")]
    image: PathBuf,
    /// KEY=VALUE put in the operator's environment (e.g. MALLOC_ARENA_MAX=2); repeatable.
    #[arg(long, value_parser = env_pair)]
    operator_env: Vec<(String, String)>,
    /// Resync period of the operator during the steady-state measurement, in seconds.
    #[arg(long, default_value_t = 60)]
    resync: u64,
    /// Resync period of the operator in the accounts scenario, in seconds: the operator's
    /// default (10 minutes), so the run measures creation across accounts; drift checks
    /// under the quota are the `--resync-create` scenario's subject.
    #[arg(long, default_value_t = 600)]
    accounts_resync: u64,
    /// The operator's --concurrency (workers) in every scenario.
    #[arg(long, default_value_t = 16)]
    concurrency: u16,
    /// Where to write the Markdown rows (appended).
    #[arg(long, default_value = "target/bench-results.md")]
    out: PathBuf,
}

fn accounts_shape(text: &str) -> Result<(usize, usize), String> {
    let (a, n) = text
        .split_once('x')
        .ok_or_else(|| format!("{text:?} is not ACCOUNTSxSEEDS (e.g. 10x100)"))?;
    let parse = |v: &str| v.parse::<usize>().map_err(|e| format!("{v:?}: {e}"));
    Ok((parse(a)?, parse(n)?))
}

fn env_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

/// The scenarios to run, after the defaults are applied.
struct Plan {
    n: Vec<usize>,
    capped_n: Vec<usize>,
    accounts: Option<(usize, usize)>,
    resync_create: Option<usize>,
    node: Option<usize>,
}

impl Args {
    fn plan(&self) -> Plan {
        let named = self.n.is_some()
            || self.capped_n.is_some()
            || self.accounts.is_some()
            || self.resync_create.is_some()
            || self.node.is_some();
        if named {
            Plan {
                n: self.n.clone().unwrap_or_default(),
                capped_n: self.capped_n.clone().unwrap_or_default(),
                accounts: self.accounts,
                resync_create: self.resync_create,
                node: self.node,
            }
        } else {
            Plan {
                n: vec![1, 100, 1000],
                capped_n: vec![1, 100],
                accounts: Some((10, 100)),
                resync_create: Some(500),
                node: Some(1000),
            }
        }
    }
}

/// The external id every tenant role of the accounts scenario requires.
const EXTERNAL_ID: &str = "bench-external-id";

/// One scenario's results.
#[derive(Debug, Default)]
struct Row {
    scenario: String,
    n: usize,
    routes: usize,
    ready_p50: f64,
    ready_p99: f64,
    ready_max: f64,
    requests_per_object: f64,
    writes_per_object: f64,
    min_writes_per_object: f64,
    resync_requests_per_object: f64,
    resync_writes: u64,
    throttled: u64,
    rss_mib: f64,
    cpu_seconds: f64,
}

fn authedapi_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("authedapi.dev", "v1alpha1", "AuthedApi"),
        "authedapis",
    )
}

/// The functions object `i` targets: its own, as each API in an account would have (and
/// as Lambda's 20 KB resource-policy limit requires: one function cannot admit 1000 APIs).
fn function_names(i: usize, routes: usize) -> Vec<String> {
    if routes == 2 {
        vec![format!("bench-{i}-private"), format!("bench-{i}-public")]
    } else {
        (0..routes / 2).map(|f| format!("bench-{i}-f{f}")).collect()
    }
}

/// The seed (2 routes, 2 functions) or a 10-route variant (5 functions, 2 routes each,
/// alternately IAM and public).
fn object(name: &str, i: usize, account: &str, routes: usize) -> Value {
    let lambda = |f: &str| json!({"lambda": {"functionArn": format!("arn:aws:lambda:us-east-1:{account}:function:{f}")}});
    let functions = function_names(i, routes);
    let routes: Vec<Value> = if routes == 2 {
        vec![
            json!({"route": "GET /private", "target": lambda(&functions[0])}),
            json!({"route": "GET /public", "authorization": "none", "target": lambda(&functions[1])}),
        ]
    } else {
        (0..routes)
            .map(|r| {
                let method = if r % 2 == 0 { "GET" } else { "POST" };
                let auth = if r % 2 == 0 { "iam" } else { "none" };
                json!({"route": format!("{method} /r{}", r / 2), "authorization": auth,
                       "target": lambda(&functions[r / 2])})
            })
            .collect()
    };
    json!({
        "apiVersion": "authedapi.dev/v1alpha1",
        "kind": "AuthedApi",
        "metadata": {"name": name},
        "spec": {
            "stage": "bench",
            "region": "us-east-1",
            "auth0": {"domain": "myorg.us.auth0.com", "clientId": "UsGRQJJz5sDfPQDs6bhQ9Oc3hNISuVif"},
            "routes": routes,
        }
    })
}

/// The fewest AWS writes one object can cost: one create per resource it owns
/// (API, integrations, routes, stage, permissions, pool, role, policy, pool roles).
fn min_writes(routes: usize) -> f64 {
    let (integrations, functions) = if routes == 2 {
        (2, 2)
    } else {
        (routes / 2, routes / 2)
    };
    (1 + integrations + routes + 1 + functions + 4) as f64
}

fn is_ready(obj: &DynamicObject) -> bool {
    let generation = obj.metadata.generation.unwrap_or_default();
    obj.data["status"]["conditions"]
        .as_array()
        .is_some_and(|c| {
            c.iter().any(|c| {
                c["type"] == "Ready"
                    && c["status"] == "True"
                    && c["observedGeneration"] == generation
            })
        })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// RSS (MiB) and CPU seconds of the operator whose command line contains `marker`.
fn process_usage(marker: &str) -> Option<(f64, f64)> {
    usage_of(&[marker, "controller"])
}

/// CPU seconds so far of the emulator (moto: one request at a time) and of the IAM judge
/// it asks about each request: the rig's own share of a run's time.
fn rig_cpu(emulator: &Emulator) -> (f64, f64) {
    let port = |url: &str| url.rsplit(':').next().unwrap_or_default().to_owned();
    let moto = usage_of(&[
        "authedapi_moto.py",
        &format!(" -p {} ", port(&emulator.endpoint)),
    ]);
    let judge = usage_of(&[
        "judge.mjs",
        &format!(" --port {} ", port(&emulator.judge.url)),
    ]);
    (
        moto.map(|(_, cpu)| cpu).unwrap_or_default(),
        judge.map(|(_, cpu)| cpu).unwrap_or_default(),
    )
}

/// RSS (MiB) and CPU seconds of the process whose command line contains every one of
/// `words` (the arguments separated by spaces, one after the last).
fn usage_of(words: &[&str]) -> Option<(f64, f64)> {
    for entry in std::fs::read_dir("/proc").ok()? {
        let path = entry.ok()?.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !words.iter().all(|w| cmdline.contains(w)) || cmdline.starts_with("sh ") {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).ok()?;
        let rss_kib: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().ok()? + fields[12].parse::<f64>().ok()?;
        return Some((rss_kib / 1024.0, ticks / 100.0));
    }
    None
}

fn writes(counts: &BTreeMap<(String, String, String), u64>) -> u64 {
    counts
        .iter()
        .filter(|((_, op, outcome), _)| {
            outcome == "forwarded"
                && !(op.starts_with("Get") || op.starts_with("List") || op.starts_with("Describe"))
        })
        .map(|(_, n)| n)
        .sum()
}

fn forwarded(counts: &BTreeMap<(String, String, String), u64>) -> u64 {
    counts
        .iter()
        .filter(|((_, _, o), _)| o == "forwarded")
        .map(|(_, n)| n)
        .sum()
}

async fn scenario(
    plane: &ControlPlane,
    emulator: &Emulator,
    args: &Args,
    n: usize,
    routes: usize,
    capped: bool,
) -> anyhow::Result<Row> {
    let label = format!(
        "{} routes{}",
        routes,
        if capped {
            ", API Gateway capped at 10 rps"
        } else {
            ""
        }
    );
    eprintln!("== N={n}, {label}");
    let client = plane.client().await?;
    let ns = TestNamespace::create(&client, "bench").await?;
    let account = emulator.new_account();
    let config = account.sdk_config().await;
    eprintln!(
        "   creating {} functions in the emulator (not measured)",
        n * routes.max(4) / 2
    );
    ensure_functions(&config, 0..n, routes).await?;

    let proxy = FaultProxy::start(&emulator.endpoint)?;
    if capped {
        proxy.set_rate_limit("apigateway", 10.0, 40);
    }
    let metrics_port = free_port()?;
    let marker = format!("127.0.0.1:{metrics_port}");
    let via_proxy = through(&proxy, &account);
    let identity = OperatorIdentity::provision(
        &account,
        &repo_root().join(&args.operator),
        "default",
        &Default::default(),
    )
    .await?;
    let _operator = spawn_operator(
        plane,
        args,
        args.resync,
        &via_proxy,
        &identity.credentials,
        &marker,
        &[
            "--namespace".into(),
            ns.name.clone(),
            // The platform allows the benchmark's own functions (see function_names).
            "--allowed-functions".into(),
            format!("arn:aws:lambda:*:{}:function:*", account.id),
            // Uncapped runs measure the operator, not its client-side limit.
            "--aws-rate-limit".into(),
            if capped {
                "apigateway=10:40".into()
            } else {
                "apigateway=100000:100000".into()
            },
        ],
    )?;

    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns.name, &authedapi_resource());
    let started = Instant::now();
    let mut applied_at = HashMap::new();
    for i in 0..n {
        let name = format!("api-{i}");
        let obj: DynamicObject = serde_json::from_value(object(&name, i, &account.id, routes))?;
        api.patch(
            &name,
            &PatchParams::apply("bench").force(),
            &Patch::Apply(&obj),
        )
        .await
        .with_context(|| format!("applying {name}"))?;
        applied_at.insert(format!("{}/{name}", ns.name), started.elapsed());
    }
    let ready_after = wait_all_ready(&api, &applied_at, started).await?;
    let all_ready = started.elapsed();
    // Let the reconciles our own status writes trigger pass, then take the creation bill.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let creation = proxy.counts();
    let throttled = proxy.outcome_total("rate_limited") + proxy.outcome_total("throttle");
    let (rss_mib, cpu_seconds) = process_usage(&marker).unwrap_or_default();
    eprintln!("   all Ready in {:.1}s", all_ready.as_secs_f64());

    // Steady state: one resync period (+10% jitter, + margin) of unchanged objects.
    proxy.reset_counts();
    tokio::time::sleep(Duration::from_secs_f64(args.resync as f64 * 1.1 + 3.0)).await;
    let resync = proxy.counts();

    let mut times: Vec<f64> = ready_after.into_values().collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(Row {
        scenario: label,
        n,
        routes,
        ready_p50: percentile(&times, 50.0),
        ready_p99: percentile(&times, 99.0),
        ready_max: times.last().copied().unwrap_or_default(),
        requests_per_object: forwarded(&creation) as f64 / n as f64,
        writes_per_object: writes(&creation) as f64 / n as f64,
        min_writes_per_object: min_writes(routes) + 1.0 / n as f64,
        resync_requests_per_object: forwarded(&resync) as f64 / n as f64,
        resync_writes: writes(&resync),
        throttled,
        rss_mib,
        cpu_seconds,
    })
}

/// N seeds with the operator as a Pod on the rig's node, installed by its chart with the
/// chart's default resources: time to Ready, its memory against the limit (the process's
/// RSS and peak from /proc, the container cgroup's peak, which the kubelet enforces the
/// limit on), restarts.
async fn node_scenario(args: &Args, n: usize) -> anyhow::Result<String> {
    use authedapi_rig::node::chart::{ChartInstall, NodeRig, OPERATOR_SERVICE_ACCOUNT};
    eprintln!("== N={n}, the operator as a Pod on the rig's node");
    let tag = args
        .image
        .file_name()
        .and_then(|f| f.to_str())
        .and_then(|f| f.strip_prefix("authedapi-")?.strip_suffix(".oci.tar"))
        .context("--image is hack/image.sh's authedapi-<tag>.oci.tar")?
        .to_owned();
    let rig = NodeRig::start(&repo_root().join(&args.image), &tag).await?;
    let install = ChartInstall::prepare(
        &rig,
        "bench",
        OPERATOR_SERVICE_ACCOUNT,
        &repo_root().join(&args.operator),
    )
    .await?;
    // The chart's defaults but the client-side API Gateway limit: the emulator has no
    // quota, and the run measures memory, not the quota's floor.
    install.install(&["aws.rateLimits=apigateway=1000:1000"])?;
    let config = install.account.sdk_config().await;
    eprintln!(
        "   creating {} functions in the emulator (not measured)",
        n * 2
    );
    ensure_functions(&config, 0..n, 2).await?;

    let client = rig.node.plane.client().await?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &install.apps, &authedapi_resource());
    let started = Instant::now();
    let mut applied_at = HashMap::new();
    for i in 0..n {
        let name = format!("api-{i}");
        apply(&api, object(&name, i, &install.account.id, 2)).await?;
        applied_at.insert(format!("{}/{name}", install.apps), started.elapsed());
    }
    wait_all_ready(&api, &applied_at, started).await?;
    let all_ready = started.elapsed();
    // Settled: the status writes' own reconciles pass.
    tokio::time::sleep(Duration::from_secs(10)).await;

    let pod = install
        .pods()
        .await?
        .into_iter()
        .next()
        .context("the operator's pod")?;
    let container = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .context("the operator's container")?;
    let restarts = container.restart_count;
    let pid = rig
        .node
        .container_pid(container.container_id.as_deref().unwrap_or_default())?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |field: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .unwrap_or_default()
    };
    let (rss, peak) = (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0);
    // The container's memory cgroup (v1): where the limit is enforced.
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, path)| path.to_owned()))
        .context("the container's memory cgroup")?;
    let read = |file: &str| -> f64 {
        std::fs::read_to_string(format!("/sys/fs/cgroup/memory{cgroup}/{file}"))
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .unwrap_or_default()
            / 1024.0
            / 1024.0
    };
    let (cgroup_peak, limit) = (
        read("memory.max_usage_in_bytes"),
        read("memory.limit_in_bytes"),
    );
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let cpu = (fields
        .get(11)
        .and_then(|f| f.parse::<f64>().ok())
        .unwrap_or_default()
        + fields
            .get(12)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or_default())
        / 100.0;
    eprintln!(
        "   all Ready in {:.1}s; RSS {rss:.1} MiB (peak {peak:.1}), cgroup peak {cgroup_peak:.1} MiB of {limit:.0}; restarts {restarts}",
        all_ready.as_secs_f64()
    );
    install.uninstall()?;
    Ok(format!(
        "| {n} | {} (chart defaults) | {limit:.0} | {:.1} | {rss:.1} | {peak:.1} | {cgroup_peak:.1} | {:.1}x | {restarts} | {cpu:.1} |\n",
        tag,
        all_ready.as_secs_f64(),
        limit / cgroup_peak.max(1.0),
    ))
}

/// Start the operator (`controller`, `--resync` of `resync` seconds, `--concurrency`,
/// metrics on `marker`, plus `extra`) as the principal holding `credentials`, its AWS
/// endpoint `account`'s.
fn spawn_operator(
    plane: &ControlPlane,
    args: &Args,
    resync: u64,
    account: &Account,
    credentials: &authedapi_rig::Credentials,
    marker: &str,
    extra: &[String],
) -> anyhow::Result<Supervised> {
    let mut env = authedapi_rig::operator_env(plane, account, credentials);
    env.push(("AUTHEDAPI_LOG_LEVEL".into(), "warn".into()));
    env.extend(args.operator_env.iter().cloned());
    let mut argv: Vec<String> = vec![
        "controller".into(),
        "--metrics-addr".into(),
        marker.to_owned(),
        "--resync".into(),
        format!("{resync}s"),
        "--concurrency".into(),
        args.concurrency.to_string(),
    ];
    argv.extend(extra.iter().cloned());
    Supervised::spawn_with_env(
        "authedapi",
        &repo_root().join(&args.operator),
        &argv,
        &env,
        &plane.dir().join(format!(
            "bench-operator-{}.log",
            marker.rsplit(':').next().unwrap_or("x")
        )),
        None,
    )
}

/// Watch `api` until every object in `applied_at` (by "namespace/name") is Ready for its
/// generation; each one's seconds from its apply to Ready. A watch, not a list every 200
/// ms: listing 1,000 objects five times a second cost the API server and the bench CPU
/// the operator and the emulator need on 2 cores.
async fn wait_all_ready(
    api: &Api<DynamicObject>,
    applied_at: &HashMap<String, Duration>,
    started: Instant,
) -> anyhow::Result<HashMap<String, f64>> {
    let mut ready_after: HashMap<String, f64> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
    let mut objects =
        std::pin::pin!(watcher(api.clone(), watcher::Config::default()).applied_objects());
    while ready_after.len() < applied_at.len() {
        let obj = tokio::time::timeout_at(deadline, objects.try_next())
            .await
            .context("not all Ready within an hour")??
            .context("the watch ended")?;
        let key = format!(
            "{}/{}",
            obj.metadata.namespace.clone().unwrap_or_default(),
            obj.metadata.name.clone().unwrap_or_default()
        );
        if let Some(applied) = applied_at.get(&key)
            && is_ready(&obj)
            && !ready_after.contains_key(&key)
        {
            ready_after.insert(key, (started.elapsed() - *applied).as_secs_f64());
        }
    }
    Ok(ready_after)
}

/// Jiffies the machine spent busy and in all since boot (/proc/stat), for its CPU use
/// over a run: the rig, the operator and the bench share its cores.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    // idle and iowait
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The functions of objects `objects` (of `routes` routes each) in `config`'s account,
/// made before the clock starts.
async fn ensure_functions(
    config: &aws_types::SdkConfig,
    objects: std::ops::Range<usize>,
    routes: usize,
) -> anyhow::Result<()> {
    for i in objects {
        for f in function_names(i, routes) {
            functions::ensure_function(config, &f).await?;
        }
    }
    Ok(())
}

/// `account` as the operator reaches it: through `proxy`.
fn through(proxy: &FaultProxy, account: &Account) -> Account {
    Account {
        endpoint: proxy.endpoint().to_owned(),
        ..account.clone()
    }
}

/// Apply one object with server-side apply.
async fn apply(api: &Api<DynamicObject>, obj: Value) -> anyhow::Result<()> {
    let obj: DynamicObject = serde_json::from_value(obj)?;
    let name = obj.metadata.name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply("bench").force(),
        &Patch::Apply(&obj),
    )
    .await
    .with_context(|| format!("applying {name}"))?;
    Ok(())
}

type KeyCounts = BTreeMap<(String, String, String, String), u64>;

/// Forwarded requests of `service` by access key id.
fn forwarded_by_key(counts: &KeyCounts, service: &str) -> BTreeMap<String, u64> {
    let mut by_key = BTreeMap::new();
    for ((key, svc, _, outcome), n) in counts {
        if svc == service && outcome == FORWARDED {
            *by_key.entry(key.clone()).or_default() += n;
        }
    }
    by_key
}

fn is_read_op(op: &str) -> bool {
    op.starts_with("Get") || op.starts_with("List") || op.starts_with("Describe")
}

/// `after - before` of (service, operation, outcome) counts.
fn delta(
    after: &BTreeMap<(String, String, String), u64>,
    before: &BTreeMap<(String, String, String), u64>,
) -> BTreeMap<(String, String, String), u64> {
    after
        .iter()
        .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Forwarded requests of `service` in `counts`: (all, reads).
fn service_requests(counts: &BTreeMap<(String, String, String), u64>, service: &str) -> (u64, u64) {
    let mut all = 0;
    let mut reads = 0;
    for ((svc, op, outcome), n) in counts {
        if svc == service && outcome == FORWARDED {
            all += n;
            if is_read_op(op) {
                reads += n;
            }
        }
    }
    (all, reads)
}

/// The accounts scenario: `accounts` tenant accounts, each with a role the operator's own
/// role may assume (as tests/accounts.rs sets them up), a namespace each mapped to one
/// account by an AuthedApiTenant, `per_account` seeds in each; the fault proxy caps API
/// Gateway at 10 requests/s (burst 40) per account; one operator watches every namespace
/// with `--own-account deny` and the default client-side limit (10:40, per account).
/// Uncapped (`capped` false), the same with no limit in the proxy or the operator: the
/// time this machine needs for the work with no quota, the floor the quota adds to.
async fn accounts_scenario(
    plane: &ControlPlane,
    emulator: &Emulator,
    args: &Args,
    (accounts, per_account): (usize, usize),
    capped: bool,
) -> anyhow::Result<AccountsRun> {
    let quota = if capped {
        "API Gateway capped at 10 rps per account"
    } else {
        "no quota"
    };
    eprintln!("== {accounts} accounts x {per_account} seeds, {quota}");
    // Each run's operator sees only its own objects.
    let run_label = if capped { "capped" } else { "uncapped" };
    let operator = repo_root().join(&args.operator);
    let client = plane.client().await?;
    let own = emulator.new_account();
    let operator_role = format!("arn:aws:iam::{}:role/authedapi-operator-default", own.id);
    let tenants: Vec<Account> = (0..accounts).map(|_| emulator.new_account()).collect();
    eprintln!(
        "   tenant roles, namespaces, tenants and {} functions (not measured)",
        accounts * per_account * 2
    );
    let tenant_api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("authedapi.dev", "v1alpha1", "AuthedApiTenant"),
            "authedapitenants",
        ),
    );
    let mut namespaces = Vec::new();
    for tenant in &tenants {
        provision_tenant_role(
            tenant,
            &operator,
            "default",
            &operator_role,
            EXTERNAL_ID,
            &PolicyOptions::default(),
        )
        .await?;
        let config = tenant.sdk_config().await;
        ensure_functions(&config, 0..per_account, 2).await?;
        let ns = TestNamespace::create(&client, "bench-acct").await?;
        apply(
            &tenant_api,
            json!({
                "apiVersion": "authedapi.dev/v1alpha1", "kind": "AuthedApiTenant",
                "metadata": {"name": ns.name},
                "spec": {
                    "namespaces": [ns.name],
                    "allowedFunctions": [format!("arn:aws:lambda:*:{}:function:*", tenant.id)],
                    "aws": {"roleArn": tenant_role_arn(tenant), "externalId": EXTERNAL_ID}
                }
            }),
        )
        .await?;
        namespaces.push(ns.name);
    }
    let mut assume = vec!["--assume-only".to_owned()];
    for tenant in &tenants {
        assume.extend(["--assume-role".to_owned(), tenant_role_arn(tenant)]);
    }
    let identity =
        OperatorIdentity::provision(&own, &operator, "default", &PolicyOptions { args: assume })
            .await?;

    let proxy = FaultProxy::start(&emulator.endpoint)?;
    if capped {
        proxy.set_rate_limit_per_access_key("apigateway", 10.0, 40);
    }
    let metrics_port = free_port()?;
    let marker = format!("127.0.0.1:{metrics_port}");
    let via_proxy = through(&proxy, &own);
    // One operator for every namespace (no --namespace): the bench owns the control plane.
    let operator_process = spawn_operator(
        plane,
        args,
        args.accounts_resync,
        &via_proxy,
        &identity.credentials,
        &marker,
        &[
            "--own-account".into(),
            "deny".into(),
            "--allowed-functions".into(),
            "arn:aws:lambda:*:*:function:*".into(),
            "--aws-rate-limit".into(),
            if capped {
                "apigateway=10:40".into()
            } else {
                "apigateway=100000:100000".into()
            },
            "--watch-label-selector".into(),
            format!("bench-run={run_label}"),
        ],
    )?;

    let all: Api<DynamicObject> = Api::all_with(client.clone(), &authedapi_resource());
    let rig_before = rig_cpu(emulator);
    let machine_before = machine_jiffies();
    let started = Instant::now();
    let mut applied_at = HashMap::new();
    // Round robin over the accounts, so every account has work from the start.
    for i in 0..per_account {
        for (ns, tenant) in namespaces.iter().zip(&tenants) {
            let name = format!("api-{i}");
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), ns, &authedapi_resource());
            let mut obj = object(&name, i, &tenant.id, 2);
            obj["metadata"]["labels"] = json!({"bench-run": run_label});
            apply(&api, obj).await?;
            applied_at.insert(format!("{ns}/{name}"), started.elapsed());
        }
    }
    let ready_after = wait_all_ready(&all, &applied_at, started).await?;
    let total = started.elapsed().as_secs_f64();
    let rig_after = rig_cpu(emulator);
    let machine_after = machine_jiffies();
    let machine_busy = 100.0 * (machine_after.0 - machine_before.0) as f64
        / (machine_after.1 - machine_before.1).max(1) as f64;
    let (moto_cpu, judge_cpu) = (rig_after.0 - rig_before.0, rig_after.1 - rig_before.1);
    let (rss_mib, cpu_seconds) = process_usage(&marker).unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (counts, by_key) = proxy.snapshot();
    eprintln!("   all Ready in {total:.1}s");
    drop(operator_process);

    // API Gateway requests by access key = by account (one session per account).
    let gateway = forwarded_by_key(&by_key, "apigateway");
    let keys = gateway.len();
    let most = gateway.values().copied().max().unwrap_or(0);
    let least = gateway.values().copied().min().unwrap_or(0);
    let per_seed = gateway.values().sum::<u64>() as f64 / (accounts * per_account) as f64;
    // Each account's last object Ready (from the first apply).
    let mut done: Vec<f64> = namespaces
        .iter()
        .map(|ns| {
            ready_after
                .iter()
                .filter(|(k, _)| k.starts_with(&format!("{ns}/")))
                .map(|(k, t)| applied_at[k].as_secs_f64() + t)
                .fold(0.0, f64::max)
        })
        .collect();
    done.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mut times: Vec<f64> = ready_after.into_values().collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let limited: u64 = counts
        .iter()
        .filter(|((_, _, o), _)| o == RATE_LIMITED)
        .map(|(_, n)| n)
        .sum();
    Ok(AccountsRun {
        shape: (accounts, per_account),
        total,
        p50: percentile(&times, 50.0),
        p99: percentile(&times, 99.0),
        done: (
            done.first().copied().unwrap_or_default(),
            done.last().copied().unwrap_or_default(),
        ),
        per_seed,
        least,
        most,
        moto_cpu,
        judge_cpu,
        machine_busy,
        keys,
        limited,
        rss_mib,
        cpu_seconds,
    })
}

/// What one run of the accounts scenario measured.
struct AccountsRun {
    shape: (usize, usize),
    total: f64,
    p50: f64,
    p99: f64,
    /// When the first and the last account had all their seeds Ready.
    done: (f64, f64),
    per_seed: f64,
    /// API Gateway requests of the least and the busiest account.
    least: u64,
    most: u64,
    moto_cpu: f64,
    judge_cpu: f64,
    machine_busy: f64,
    keys: usize,
    limited: u64,
    rss_mib: f64,
    cpu_seconds: f64,
}

/// The accounts rows: the run with no quota, then the capped one against its floor, the
/// larger of the quota's (the busiest account's requests at 10/s after its burst of 40;
/// accounts are independent, so a fleet has the floor of one account) and this machine's
/// (the same work with no quota).
fn accounts_rows(uncapped: &AccountsRun, capped: &AccountsRun) -> String {
    let quota_floor = capped.most.saturating_sub(40) as f64 / 10.0;
    let floor = quota_floor.max(uncapped.total);
    let row = |r: &AccountsRun, quota: &str, floor: Option<f64>| {
        format!(
            "| {} x {} | {quota} | {:.1} | {:.2} | {:.2} | {:.1} – {:.1} | {:.1} ({} – {} per account) | {} | {:.1} / {:.1} | {:.0} | {} | {} | {:.1} | {:.1} |\n",
            r.shape.0,
            r.shape.1,
            r.total,
            r.p50,
            r.p99,
            r.done.0,
            r.done.1,
            r.per_seed,
            r.least,
            r.most,
            match floor {
                Some(f) => format!(
                    "{:.2} (of {f:.1}: quota {quota_floor:.1}, no quota {:.1})",
                    r.total / f,
                    uncapped.total
                ),
                None => "–".to_owned(),
            },
            r.moto_cpu,
            r.judge_cpu,
            r.machine_busy,
            r.keys,
            r.limited,
            r.rss_mib,
            r.cpu_seconds,
        )
    };
    row(uncapped, "none", None) + &row(capped, "10 rps per account", Some(floor))
}

/// Poll one object every 50 ms until it is Ready; seconds since `since`.
async fn wait_one_ready(
    api: &Api<DynamicObject>,
    name: &str,
    since: Instant,
) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{name} not Ready within 30 minutes"
        );
        if let Some(obj) = api.get_opt(name).await?
            && is_ready(&obj)
        {
            return Ok(since.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The create-during-a-resync scenario: `n` seeds Ready in one account (API Gateway capped
/// at 10 requests/s in the proxy and in the operator), the operator restarted (a fresh
/// process: every object's drift check is due), then, once drift-check reads flow, one
/// more seed: its time to Ready against its floor.
async fn resync_create_scenario(
    plane: &ControlPlane,
    emulator: &Emulator,
    args: &Args,
    n: usize,
) -> anyhow::Result<String> {
    eprintln!("== a create during the resync of {n} seeds, API Gateway capped at 10 rps");
    let client = plane.client().await?;
    let ns = TestNamespace::create(&client, "bench-resync").await?;
    let account = emulator.new_account();
    let config = account.sdk_config().await;
    eprintln!(
        "   creating {} functions in the emulator (not measured)",
        (n + 1) * 2
    );
    ensure_functions(&config, 0..n + 1, 2).await?;
    let proxy = FaultProxy::start(&emulator.endpoint)?;
    proxy.set_rate_limit("apigateway", 10.0, 40);
    let via_proxy = through(&proxy, &account);
    let identity = OperatorIdentity::provision(
        &account,
        &repo_root().join(&args.operator),
        "default",
        &Default::default(),
    )
    .await?;
    let operator_args: Vec<String> = vec![
        "--namespace".into(),
        ns.name.clone(),
        "--allowed-functions".into(),
        format!("arn:aws:lambda:*:{}:function:*", account.id),
        "--aws-rate-limit".into(),
        "apigateway=10:40".into(),
    ];
    let marker = format!("127.0.0.1:{}", free_port()?);
    let operator = spawn_operator(
        plane,
        args,
        args.resync,
        &via_proxy,
        &identity.credentials,
        &marker,
        &operator_args,
    )?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns.name, &authedapi_resource());

    // One seed alone in an idle account (its bucket full, so never held by the quota),
    // after a first one that made the account's shared OIDC provider: what a create costs
    // and takes uncapped.
    let mut single = (0.0, 0, 0);
    for i in 0..2.min(n) {
        let before = proxy.counts();
        let t = Instant::now();
        apply(&api, object(&format!("api-{i}"), i, &account.id, 2)).await?;
        let took = wait_one_ready(&api, &format!("api-{i}"), t).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (all, reads) = service_requests(&delta(&proxy.counts(), &before), "apigateway");
        single = (took, all, reads);
    }
    eprintln!(
        "   a single create: {:.2}s, {} API Gateway requests ({} reads)",
        single.0, single.1, single.2
    );
    // Then the rest, back to back.
    let started = Instant::now();
    let mut applied_at = HashMap::new();
    for i in 2.min(n)..n {
        let name = format!("api-{i}");
        apply(&api, object(&name, i, &account.id, 2)).await?;
        applied_at.insert(format!("{}/{name}", ns.name), started.elapsed());
    }
    wait_all_ready(&api, &applied_at, started).await?;
    let created_in = started.elapsed().as_secs_f64();
    eprintln!(
        "   {n} Ready ({created_in:.1}s for the last {})",
        applied_at.len()
    );

    // A fresh process: every object's drift check is due.
    drop(operator);
    let before_restart = proxy.counts();
    let restarted = Instant::now();
    let marker = format!("127.0.0.1:{}", free_port()?);
    let _operator = spawn_operator(
        plane,
        args,
        args.resync,
        &via_proxy,
        &identity.credentials,
        &marker,
        &operator_args,
    )?;
    // Drift-check reads flowing: the first API Gateway read of the new process, then 5 s.
    loop {
        let (_, reads) = service_requests(&delta(&proxy.counts(), &before_restart), "apigateway");
        if reads > 0 || restarted.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first_read = restarted.elapsed().as_secs_f64();
    let window_start = proxy.counts();
    let window_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before_create = proxy.counts();
    let window = window_started.elapsed().as_secs_f64();
    let (drift_gw, drift_gw_reads) =
        service_requests(&delta(&before_create, &window_start), "apigateway");
    let drift_all: u64 = delta(&before_create, &window_start)
        .iter()
        .filter(|((_, op, o), _)| o == FORWARDED && is_read_op(op))
        .map(|(_, n)| n)
        .sum();

    let name = format!("api-{n}");
    let t = Instant::now();
    apply(&api, object(&name, n, &account.id, 2)).await?;
    let took = wait_one_ready(&api, &name, t).await?;
    let during = delta(&proxy.counts(), &before_create);
    let (during_gw, during_gw_reads) = service_requests(&during, "apigateway");
    let limited: u64 = during
        .iter()
        .filter(|((_, _, o), _)| o == RATE_LIMITED)
        .map(|(_, n)| n)
        .sum();
    let (rss_mib, cpu_seconds) = process_usage(&marker).unwrap_or_default();
    eprintln!("   the create during the resync: {took:.2}s");
    let floor = single.1 as f64 / 10.0 + single.0;
    Ok(format!(
        "| {n} | {took:.2} | {floor:.2} ({} / 10 rps + {:.2}) | {:.2} | {:.1} ({} of {} API Gateway requests in {:.1}s; {:.1} reads/s of all services) | {:.1} ({during_gw} API Gateway requests, {during_gw_reads} reads, in {took:.2}s) | {limited} | {first_read:.1} | {created_in:.0} | {rss_mib:.1} | {cpu_seconds:.1} |\n",
        single.1,
        single.0,
        took - floor,
        drift_gw_reads as f64 / window,
        drift_gw_reads,
        drift_gw,
        window,
        drift_all as f64 / window,
        during_gw as f64 / took.max(0.001),
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = args.plan();
    std::env::set_current_dir(repo_root())?;
    let (plane, emulator) = tokio::try_join!(ControlPlane::start(), Emulator::start())?;
    plane.install_crds()?;

    // Rows are written as each scenario ends, so a long run keeps what it measured.
    let mut tables: Vec<(&str, String)> = Vec::new();
    let write = |tables: &Vec<(&str, String)>| -> anyhow::Result<()> {
        let text: Vec<String> = tables
            .iter()
            .map(|(h, rows)| format!("{h}{rows}"))
            .collect();
        std::fs::write(&args.out, text.join("\n"))?;
        Ok(())
    };
    let add = |tables: &mut Vec<(&'static str, String)>, header: &'static str, row: &str| {
        print!("{row}");
        match tables.iter_mut().find(|(h, _)| *h == header) {
            Some((_, rows)) => rows.push_str(row),
            None => tables.push((header, row.to_owned())),
        }
    };
    // First: its operator watches every namespace, so it runs while there are no others.
    if let Some(shape) = plan.accounts {
        let uncapped = accounts_scenario(&plane, &emulator, &args, shape, false).await?;
        let capped = accounts_scenario(&plane, &emulator, &args, shape, true).await?;
        add(
            &mut tables,
            ACCOUNTS_HEADER,
            &accounts_rows(&uncapped, &capped),
        );
        write(&tables)?;
    }
    if let Some(n) = plan.resync_create {
        let row = resync_create_scenario(&plane, &emulator, &args, n).await?;
        add(&mut tables, RESYNC_CREATE_HEADER, &row);
        write(&tables)?;
    }
    if let Some(n) = plan.node {
        let row = node_scenario(&args, n).await?;
        add(&mut tables, NODE_HEADER, &row);
        write(&tables)?;
    }
    let mut scenarios: Vec<(usize, usize, bool)> = Vec::new();
    for &n in &plan.n {
        for &routes in &args.routes {
            scenarios.push((n, routes, false));
        }
    }
    scenarios.extend(plan.capped_n.iter().map(|&n| (n, 2, true)));
    for (n, routes, capped) in scenarios {
        let r = scenario(&plane, &emulator, &args, n, routes, capped).await?;
        let row = format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} ({:.1}) | {:.1} | {} | {} | {:.1} | {:.1} |\n",
            r.n,
            r.scenario,
            r.ready_p50,
            r.ready_p99,
            r.ready_max,
            r.requests_per_object,
            r.writes_per_object,
            r.min_writes_per_object,
            r.resync_requests_per_object,
            r.resync_writes,
            r.throttled,
            r.rss_mib,
            r.cpu_seconds
        );
        add(&mut tables, MAIN_HEADER, &row);
        write(&tables)?;
        let _ = r.routes;
    }
    Ok(())
}

const MAIN_HEADER: &str = "| N | scenario | ready p50 (s) | ready p99 (s) | ready max (s) | AWS requests / object (create) | writes / object (min) | requests / object / resync | writes in steady state | throttled | RSS (MiB) | CPU (s) |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";

const NODE_HEADER: &str = "| N | operator | memory limit (MiB) | all Ready (s) | RSS when Ready (MiB) | peak RSS (MiB) | cgroup peak (MiB) | headroom to the limit | restarts | CPU (s) |\n|---|---|---|---|---|---|---|---|---|---|\n";

const ACCOUNTS_HEADER: &str = "| accounts x seeds | API Gateway quota | all Ready (s) | ready p50 (s) | ready p99 (s) | accounts done (s, first – last) | API Gateway requests / seed (per account) | all Ready / floor (s) | emulator / judge CPU (s) | machine CPU busy (%) | access keys seen | throttled | RSS (MiB) | CPU (s) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";

const RESYNC_CREATE_HEADER: &str = "| objects resyncing | create Ready (s) | its floor (s) | over the floor (s) | drift-check reads / s before it (API Gateway; share 5) | API Gateway requests / s while it was created | throttled | first read after restart (s) | creating the N (s) | RSS (MiB) | CPU (s) |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
