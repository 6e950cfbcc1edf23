//! `authedapi-bench`: how fast the operator gets N AuthedApis to Ready, how many AWS
//! calls that costs against the minimum, what a resync of unchanged objects costs, and
//! the operator's memory and CPU. Run by `hack/bench.sh` (release build), which writes
//! the results to BENCHMARKS.md. Not a test: it asserts nothing, it measures.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use authedapi_rig::emulator::Account;
use authedapi_rig::fault_proxy::FaultProxy;
use authedapi_rig::process::Supervised;
use authedapi_rig::{
    ControlPlane, Emulator, OperatorIdentity, TestNamespace, free_port, functions, repo_root,
};
use clap::Parser;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// The operator binary (release build).
    #[arg(long, default_value = "target/release/authedapi")]
    operator: PathBuf,
    /// Object counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    n: Vec<usize>,
    /// Object counts for the runs under API Gateway's 10 requests/s quota.
    #[arg(long, value_delimiter = ',', default_value = "1,100")]
    capped_n: Vec<usize>,
    /// Resync period of the operator during the steady-state measurement, in seconds.
    #[arg(long, default_value_t = 60)]
    resync: u64,
    /// Where to write the Markdown rows (appended).
    #[arg(long, default_value = "target/bench-results.md")]
    out: PathBuf,
}

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

/// RSS (MiB) and CPU seconds of the process whose command line contains `marker`.
fn process_usage(marker: &str) -> Option<(f64, f64)> {
    for entry in std::fs::read_dir("/proc").ok()? {
        let path = entry.ok()?.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !cmdline.contains(marker)
            || !cmdline.contains("controller")
            || cmdline.starts_with("sh ")
        {
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
    for i in 0..n {
        for f in function_names(i, routes) {
            functions::ensure_function(&config, &f).await?;
        }
    }

    let proxy = FaultProxy::start(&emulator.endpoint)?;
    if capped {
        proxy.set_rate_limit("apigateway", 10.0, 40);
    }
    let metrics_port = free_port()?;
    let marker = format!("127.0.0.1:{metrics_port}");
    let via_proxy = Account {
        endpoint: proxy.endpoint().to_owned(),
        ..account.clone()
    };
    let identity = OperatorIdentity::provision(
        &account,
        &repo_root().join(&args.operator),
        "default",
        &Default::default(),
    )
    .await?;
    let mut env = authedapi_rig::operator_env(plane, &via_proxy, &identity.credentials);
    env.push(("AUTHEDAPI_LOG_LEVEL".into(), "warn".into()));
    let _operator = Supervised::spawn_with_env(
        "authedapi",
        &repo_root().join(&args.operator),
        &[
            "controller".into(),
            "--namespace".into(),
            ns.name.clone(),
            "--metrics-addr".into(),
            marker.clone(),
            "--resync".into(),
            format!("{}s", args.resync),
            "--concurrency".into(),
            "16".into(),
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
        &env,
        &plane
            .dir()
            .join(format!("bench-operator-{metrics_port}.log")),
        None,
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
        applied_at.insert(name, started.elapsed());
    }
    let mut ready_after: HashMap<String, f64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(3600);
    while ready_after.len() < n {
        anyhow::ensure!(Instant::now() < deadline, "not all Ready within an hour");
        for obj in api.list(&Default::default()).await? {
            let name = obj.metadata.name.clone().unwrap_or_default();
            if is_ready(&obj) && !ready_after.contains_key(&name) {
                let since_apply = started.elapsed() - applied_at[&name];
                ready_after.insert(name, since_apply.as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::env::set_current_dir(repo_root())?;
    let (plane, emulator) = tokio::try_join!(ControlPlane::start(), Emulator::start())?;
    plane.install_crds()?;

    // Rows are written as each scenario ends, so a long run keeps what it measured.
    let mut out = String::new();
    out.push_str("| N | scenario | ready p50 (s) | ready p99 (s) | ready max (s) | AWS requests / object (create) | writes / object (min) | requests / object / resync | writes in steady state | throttled | RSS (MiB) | CPU (s) |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    std::fs::write(&args.out, &out)?;
    let mut scenarios: Vec<(usize, usize, bool)> = Vec::new();
    for &n in &args.n {
        scenarios.push((n, 2, false));
        scenarios.push((n, 10, false));
    }
    scenarios.extend(args.capped_n.iter().map(|&n| (n, 2, true)));
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
        print!("{row}");
        out.push_str(&row);
        std::fs::write(&args.out, &out)?;
        let _ = r.routes;
    }
    Ok(())
}
