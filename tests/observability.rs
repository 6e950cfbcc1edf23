//! Health a platform can watch: the chart's PrometheusRule passes Prometheus's own checks
//! and the unit tests of `hack/promtool/alerts_test.yaml` (every alert fires on its series
//! and stays quiet on the others), each alert links its runbook in the README, the Grafana
//! dashboard ships in a ConfigMap for Grafana's sidecar, and every metric the dashboard and
//! the alerts query is one a running operator exports, with the values the rig's fault
//! proxy and the operator's own objects say it must have.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use authedapi_rig::fault_proxy::{Fault, Rule};
use common::{Fixture, helm, run, try_run};
use promql_parser::parser::{self, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::Value;

const CHART: &str = "charts/authedapi";
const ALL_ON: &str = "charts/authedapi/ci/all-on-values.yaml";
const DASHBOARD: &str = "charts/authedapi/dashboards/authedapi.json";
const ALERT_TESTS: &str = "hack/promtool/alerts_test.yaml";
/// The chart's default `prometheusRule.runbookBaseUrl`.
const RUNBOOKS: &str = "https://github.com/authedapi/authedapi/blob/main/README.md";

/// `promtool` from the rig's tools.
fn promtool() -> Command {
    let path = authedapi_rig::tool("promtool").unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(path);
    cmd.current_dir(common::repo());
    cmd
}

/// The documents `helm template` renders with `extra` args, as JSON.
fn render(extra: &[&str]) -> Vec<Value> {
    let text = run(
        helm()
            .args([
                "template",
                "authedapi",
                CHART,
                "--namespace",
                "authedapi-system",
            ])
            .args(extra),
        None,
    );
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("a YAML document"))
        .filter(|doc: &Value| !doc.is_null())
        .collect()
}

/// The one document of `kind` in `docs`.
fn only<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<_> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} in {docs:#?}");
    found[0]
}

/// The alerting rules of a rendered PrometheusRule.
fn alerts(rule: &Value) -> Vec<&Value> {
    rule["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules"))
        .filter(|r| r.get("alert").is_some())
        .collect()
}

fn text_of(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a string: {value}"))
}

#[test]
fn the_alerts_pass_promtool_check_and_their_unit_tests() {
    let docs = render(&["--set", "prometheusRule.enabled=true"]);
    let rule = only(&docs, "PrometheusRule");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    let names: BTreeSet<&str> = alerts(rule).iter().map(|a| text_of(&a["alert"])).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "AuthedApiAccessDenied",
            "AuthedApiAwsThrottled",
            "AuthedApiObjectsStalled",
            "AuthedApiRateLimiterSaturated",
            "AuthedApiReconcileErrorsRising",
        ])
    );

    // The rules file Prometheus would load, beside the unit tests that name it.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let rules = serde_json::json!({"groups": rule["spec"]["groups"]});
    std::fs::write(
        dir.path().join("alerts.yaml"),
        serde_yaml::to_string(&rules).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        common::repo().join(ALERT_TESTS),
        dir.path().join("alerts_test.yaml"),
    )
    .unwrap();

    let (ok, out, err) = try_run(
        promtool()
            .current_dir(dir.path())
            .args(["check", "rules", "alerts.yaml"]),
        None,
    );
    assert!(ok, "promtool check rules:\n{out}\n{err}");
    assert!(out.contains("SUCCESS: 5 rules found"), "{out}\n{err}");

    let (ok, out, err) = try_run(
        promtool()
            .current_dir(dir.path())
            .args(["test", "rules", "alerts_test.yaml"]),
        None,
    );
    assert!(ok, "promtool test rules:\n{out}\n{err}");
    assert!(out.contains("SUCCESS"), "{out}\n{err}");

    // Every alert is tested both ways: at a time it must fire, at a time it must not.
    let tests: Value =
        serde_yaml::from_str(&std::fs::read_to_string(common::repo().join(ALERT_TESTS)).unwrap())
            .unwrap();
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for test in tests["tests"].as_array().expect("tests") {
        for case in test["alert_rule_test"].as_array().expect("alert_rule_test") {
            let name = text_of(&case["alertname"]).to_owned();
            assert!(names.contains(name.as_str()), "{name} is not an alert");
            let expected = case["exp_alerts"].as_array().expect("exp_alerts");
            if expected.is_empty() {
                quiet.insert(name);
            } else {
                fires.insert(name);
            }
        }
    }
    let names: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
    assert_eq!(fires, names, "alerts with a test where they fire");
    assert_eq!(quiet, names, "alerts with a test where they do not");

    // The error reasons the rules select (AccessDenied, the reasons that stall) are ones
    // the operator writes: a renamed reason would leave an alert blind.
    let reasons = std::fs::read_to_string(common::repo().join("src/reconcile/errors.rs")).unwrap();
    let mut selected = 0;
    for alert in alerts(rule) {
        for (_, matchers) in selectors(text_of(&alert["expr"])) {
            for (label, value) in matchers {
                if label != "reason" {
                    continue;
                }
                for reason in value.split('|') {
                    selected += 1;
                    assert!(
                        reasons.contains(&format!("\"{reason}\"")),
                        "{}: the operator has no reason {reason:?}",
                        text_of(&alert["alert"])
                    );
                }
            }
        }
    }
    assert!(selected >= 7, "{selected} reasons selected");
}

/// The anchor GitHub gives a Markdown heading: lower case, punctuation other than `-` and
/// `_` dropped, spaces to `-`.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_alert_links_its_runbook_in_the_readme() {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    let section = readme
        .split_once("\n## Alerts and runbooks\n")
        .expect("README has a section \"Alerts and runbooks\"")
        .1;
    let section = section.split("\n## ").next().unwrap();
    let anchors: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(github_anchor)
        .collect();
    assert!(
        section.contains("Dashboard"),
        "the section has a Dashboard paragraph"
    );

    for (extra, base, labels) in [
        (
            &["--set", "prometheusRule.enabled=true"][..],
            RUNBOOKS,
            serde_json::json!({"severity": "warning"}),
        ),
        (
            &["--values", ALL_ON][..],
            "https://docs.example.com/authedapi/README.md",
            serde_json::json!({"severity": "warning", "team": "platform"}),
        ),
    ] {
        let docs = render(extra);
        for alert in alerts(only(&docs, "PrometheusRule")) {
            let name = text_of(&alert["alert"]);
            let anchor = name.to_lowercase();
            assert_eq!(
                alert["annotations"]["runbook_url"],
                format!("{base}#{anchor}").as_str(),
                "{name}"
            );
            assert!(
                anchors.contains(&anchor),
                "{name}: no heading with anchor #{anchor} under \"Alerts and runbooks\" (has {anchors:?})"
            );
            assert_eq!(alert["labels"], labels, "{name}");
            for key in ["summary", "description"] {
                assert!(
                    !text_of(&alert["annotations"][key]).is_empty(),
                    "{name} {key}"
                );
            }
        }
    }
}

#[test]
fn the_dashboard_ships_in_a_configmap_for_grafanas_sidecar() {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(common::repo().join(DASHBOARD)).unwrap())
            .expect("the dashboard is JSON");

    // Off by default, as is the PrometheusRule.
    let defaults = render(&[]);
    assert!(
        !defaults
            .iter()
            .any(|d| d["kind"] == "ConfigMap" || d["kind"] == "PrometheusRule"),
        "{defaults:#?}"
    );

    let docs = render(&["--set", "grafanaDashboard.enabled=true"]);
    let map = only(&docs, "ConfigMap");
    assert_eq!(map["metadata"]["name"], "authedapi-dashboard");
    assert_eq!(map["metadata"]["namespace"], "authedapi-system");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped: Value =
        serde_json::from_str(text_of(&map["data"]["authedapi.json"])).expect("JSON in the map");
    assert_eq!(shipped, dashboard, "the ConfigMap holds the dashboard file");

    let docs = render(&[
        "--values",
        ALL_ON,
        "--set",
        "grafanaDashboard.namespace=monitoring",
    ]);
    let map = only(&docs, "ConfigMap");
    assert_eq!(map["metadata"]["namespace"], "monitoring");
    assert_eq!(map["metadata"]["labels"]["example.com/dashboard"], "yes");
    assert!(map["metadata"]["labels"].get("grafana_dashboard").is_none());
    assert_eq!(map["metadata"]["annotations"]["grafana_folder"], "Platform");

    // A dashboard Grafana imports as it is: its own uid, a data source variable every
    // panel uses, and queries that parse as PromQL once Grafana has filled its variables.
    assert_eq!(dashboard["uid"], "authedapi-operator");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(variables.iter().any(|v| v["name"] == "datasource"
        && v["type"] == "datasource"
        && v["query"] == "prometheus"));
    let panels = panels(&dashboard);
    assert!(panels.len() >= 10, "{} panels", panels.len());
    for panel in &panels {
        let title = text_of(&panel["title"]);
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            assert!(
                !metric_names(text_of(&target["expr"])).is_empty(),
                "{title}"
            );
        }
    }
    // Every panel the brief of issue 14 asks for.
    let titles: Vec<&str> = panels.iter().map(|p| text_of(&p["title"])).collect();
    for wanted in [
        "Objects by condition",
        "Reconciles by result",
        "Reconcile errors by reason",
        "Reconcile duration",
        "AWS requests by service and outcome",
        "AWS requests by operation",
        "AWS throttling",
        "Rate limiter wait",
    ] {
        assert!(
            titles.contains(&wanted),
            "no panel {wanted:?} in {titles:?}"
        );
    }
}

/// The panels with queries (not rows).
fn panels(dashboard: &Value) -> Vec<&Value> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter(|p| p["type"] != "row")
        .collect()
}

/// `expr` as Grafana sends it to Prometheus: its interval variables filled in (`$job`
/// stays, inside a label matcher's string).
fn interpolated(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
}

/// The selectors of an expression, by Greptime's PromQL parser: each metric name with the
/// (label, value) of its label matchers.
fn selectors(expr: &str) -> Vec<(String, Vec<(String, String)>)> {
    struct Selectors(Vec<(String, Vec<(String, String)>)>, String);
    impl ExprVisitor for Selectors {
        type Error = String;
        fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
            let selector = match expr {
                Expr::VectorSelector(s) => s,
                Expr::MatrixSelector(m) => &m.vs,
                _ => return Ok(true),
            };
            let name = selector
                .name
                .clone()
                .ok_or_else(|| format!("a selector without a metric name in {}", self.1))?;
            let matchers = selector
                .matchers
                .matchers
                .iter()
                .map(|m| (m.name.clone(), m.value.clone()))
                .collect();
            self.0.push((name, matchers));
            Ok(true)
        }
    }
    let text = interpolated(expr);
    let ast = parser::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let mut found = Selectors(Vec::new(), text);
    walk_expr(&mut found, &ast).unwrap_or_else(|e| panic!("{e}"));
    found.0
}

/// The metric names an expression selects.
fn metric_names(expr: &str) -> BTreeSet<String> {
    selectors(expr).into_iter().map(|(name, _)| name).collect()
}

/// Every metric name the dashboard (its panels and its variables) and the chart's alerts
/// query.
fn queried_metrics() -> BTreeSet<String> {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(common::repo().join(DASHBOARD)).unwrap())
            .unwrap();
    let mut names = BTreeSet::new();
    for panel in panels(&dashboard) {
        for target in panel["targets"].as_array().unwrap() {
            names.extend(metric_names(text_of(&target["expr"])));
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] != "query" {
            continue;
        }
        // label_values(SELECTOR, LABEL): Grafana's own function around a selector.
        let query = text_of(&variable["query"]["query"]);
        let selector = query
            .strip_prefix("label_values(")
            .and_then(|q| q.rsplit_once(','))
            .map(|(selector, _)| selector)
            .unwrap_or_else(|| panic!("a label_values query: {query}"));
        names.extend(metric_names(selector));
    }
    let docs = render(&["--set", "prometheusRule.enabled=true"]);
    for alert in alerts(only(&docs, "PrometheusRule")) {
        names.extend(metric_names(text_of(&alert["expr"])));
    }
    names
}

/// A scrape in the text exposition format: each family's TYPE, and each sample by its
/// series (name and labels as written) with its value.
struct Scrape {
    types: BTreeMap<String, String>,
    samples: BTreeMap<String, f64>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut types = BTreeMap::new();
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                types.insert(name.to_owned(), kind.to_owned());
            } else if !line.starts_with('#') && !line.is_empty() {
                let (series, value) = line.rsplit_once(' ').expect("series value");
                samples.insert(series.to_owned(), value.parse().expect("a number"));
            }
        }
        Self { types, samples }
    }

    /// Whether `name` (as a query names it) is a series of an exported family of the
    /// right type: `_total` of a counter, `_bucket`/`_sum`/`_count` of a histogram, or a
    /// gauge itself; with at least one sample.
    fn exports(&self, name: &str) -> Result<(), String> {
        let family = [
            ("_total", "counter"),
            ("_bucket", "histogram"),
            ("_sum", "histogram"),
            ("_count", "histogram"),
        ]
        .iter()
        .find_map(|(suffix, kind)| {
            let base = name.strip_suffix(suffix)?;
            (self.types.get(base).map(String::as_str) == Some(*kind)).then_some(base)
        })
        .or_else(|| (self.types.get(name).map(String::as_str) == Some("gauge")).then_some(name))
        .ok_or_else(|| format!("{name}: no family of that name and type"))?;
        let has_samples = self
            .samples
            .keys()
            .any(|series| series == name || series.starts_with(&format!("{name}{{")));
        if has_samples {
            Ok(())
        } else {
            Err(format!("{name}: family {family} has no sample"))
        }
    }

    /// The value of the series written exactly as `series`.
    fn value(&self, series: &str) -> Option<f64> {
        self.samples.get(series).copied()
    }

    /// The sum of the samples of `name` whose labels include every one of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(series, _)| {
                series.starts_with(&format!("{name}{{"))
                    && labels
                        .iter()
                        .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

#[tokio::test]
async fn every_metric_the_dashboard_and_alerts_query_is_exported_by_a_running_operator() {
    let queried = queried_metrics();
    // The operator reaches the emulator through a fault proxy that throttles a share of
    // every service's requests in the service's own protocol, so the throttling families
    // have samples too (and the proxy's own count to compare with); API Gateway's client
    // limit is 1 request a second, so its requests wait for the limiter.
    let s = Fixture::through_proxy(
        "observability",
        vec![Rule::new(Fault::Throttle).rate(0.25)],
        &["--aws-rate-limit", "apigateway=1:1"],
    )
    .await;
    s.seed_ready("watched").await;

    // The scrape once it has settled: the object Ready in the operator's cache, and two
    // scrapes a second apart alike (no request in flight).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut previous = String::new();
    let scrape = loop {
        let text = s.operator.metrics().await;
        let scrape = Scrape::parse(&text);
        let settled = scrape.value(r#"authedapi_objects{condition="Ready"}"#) == Some(1.0)
            && text == previous;
        if settled {
            break scrape;
        }
        assert!(
            Instant::now() < deadline,
            "the metrics did not settle with the object Ready:\n{text}"
        );
        previous = text;
        tokio::time::sleep(Duration::from_secs(1)).await;
    };

    let missing: Vec<String> = queried
        .iter()
        .filter_map(|name| scrape.exports(name).err())
        .collect();
    assert!(
        missing.is_empty(),
        "queried by the dashboard or the alerts but not exported: {missing:#?}\nqueried: {queried:?}"
    );
    assert!(queried.len() >= 9, "{queried:?}");

    // One object, Ready; every other condition exported at 0.
    for (condition, n) in [
        ("Ready", 1.0),
        ("Reconciling", 0.0),
        ("Stalled", 0.0),
        ("Paused", 0.0),
        ("Unknown", 0.0),
    ] {
        assert_eq!(
            scrape.value(&format!("authedapi_objects{{condition=\"{condition}\"}}")),
            Some(n),
            "{condition}"
        );
    }
    assert_eq!(
        scrape.value(r#"authedapi_reconcile_errors_total{reason="AccessDenied"}"#),
        Some(0.0),
        "exported at 0 before any AccessDenied"
    );

    // Every throttle the proxy answered is counted, with the code of its protocol:
    // `Throttling` in IAM's and STS's XML, `TooManyRequestsException` in the others' JSON.
    let proxied = |services: &[&str]| -> f64 {
        s.proxy()
            .counts()
            .iter()
            .filter(|((service, _, outcome), _)| {
                outcome == "throttle" && services.contains(&service.as_str())
            })
            .map(|(_, n)| *n as f64)
            .sum()
    };
    let throttled = s.proxy().outcome_total("throttle") as f64;
    assert!(throttled > 0.0, "the proxy throttled nothing");
    assert_eq!(scrape.sum("authedapi_aws_throttles_total", &[]), throttled);
    assert_eq!(
        scrape.sum("authedapi_aws_throttles_total", &[("code", "Throttling")]),
        proxied(&["iam", "sts"])
    );
    assert_eq!(
        scrape.sum(
            "authedapi_aws_throttles_total",
            &[("code", "TooManyRequestsException")]
        ),
        proxied(&["apigateway", "cognito-identity", "lambda"])
    );
    // The proxy draws from a fixed seed: IAM (XML) and Lambda and Cognito (JSON) are
    // among the throttled.
    assert!(proxied(&["iam", "sts"]) > 0.0 && proxied(&["lambda", "cognito-identity"]) > 0.0);

    // Every attempt passed below the rate limiters and was timed there: as many waits as
    // attempts, of each service. API Gateway has a limit (the default, 10 per second).
    let attempts = scrape.sum("authedapi_aws_requests_total", &[]);
    assert_eq!(
        scrape.sum("authedapi_aws_limiter_wait_seconds_count", &[]),
        attempts
    );
    let services: BTreeSet<String> = scrape
        .samples
        .keys()
        .filter_map(|series| {
            let rest = series.strip_prefix("authedapi_aws_requests_total{")?;
            let start = rest.find("service=\"")? + "service=\"".len();
            Some(rest[start..].split('"').next()?.to_owned())
        })
        .collect();
    assert!(services.len() >= 4, "{services:?}");
    // API Gateway's requests (one reconcile makes 6, one after the other) waited for
    // their tokens, about a second each but the first; requests to the services without
    // a limit waited about 0.
    let waited = |service: &str| {
        scrape.sum(
            "authedapi_aws_limiter_wait_seconds_sum",
            &[("service", service)],
        )
    };
    let api_gateway = waited("ApiGatewayV2");
    let requests = scrape.sum(
        "authedapi_aws_requests_total",
        &[("service", "ApiGatewayV2")],
    );
    assert!(
        api_gateway >= 0.5 * (requests - 1.0),
        "{api_gateway}s for {requests} requests"
    );
    for service in services.iter().filter(|s| *s != "ApiGatewayV2") {
        assert!(waited(service) < 0.5, "{service}: {}s", waited(service));
    }
    eprintln!(
        "[measure] one seed through 25% throttling: {attempts} attempts to {services:?}, \
         {throttled} throttled; {requests} to API Gateway at 1/s waited {api_gateway:.2}s"
    );
    for service in &services {
        assert_eq!(
            scrape.sum(
                "authedapi_aws_limiter_wait_seconds_count",
                &[("service", service)]
            ),
            scrape.sum("authedapi_aws_requests_total", &[("service", service)]),
            "{service}"
        );
    }

    // Served as what it is: OpenMetrics (counter families are named without `_total`
    // there; read as the older text format, every counter would lose its TYPE and HELP).
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{}/metrics", s.operator.metrics_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(response.text().await.unwrap().ends_with("# EOF\n"));
}

/// `/readyz` is what the chart's readinessProbe, `helm install --wait`, `kubectl rollout
/// status` and Argo CD wait on: it must say ok once the operator's caches (AuthedApis and
/// AuthedApiTenants) are filled. It answered 503 "starting" forever (kube-runtime's store
/// woke only the controller, not the second task waiting on it).
#[tokio::test]
async fn readyz_answers_ok_once_the_caches_are_filled() {
    let s = Fixture::new("readyz", &[]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match common::http_get(&s.operator.metrics_addr, "/readyz").await {
            Ok(body) if body == "ok" => break,
            answer => assert!(
                Instant::now() < deadline,
                "/readyz still answers {answer:?} after 30 s\n{}",
                s.operator.log_tail(20)
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And it stays ready while the operator works.
    s.seed_ready("ready").await;
    let body = common::http_get(&s.operator.metrics_addr, "/readyz").await;
    assert_eq!(body.unwrap(), "ok");
}
