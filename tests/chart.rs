//! The Helm chart (`charts/authedapi`) and the plain manifests rendered from it (`deploy/`):
//! it lints, what it renders is accepted by a real kube-apiserver, it installs and
//! uninstalls, its RBAC is exactly what the operator needs, and no copy is stale.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

use authedapi_rig::shared::control_plane;
use common::{helm, run, try_run};
use serde_json::Value;

const CHART: &str = "charts/authedapi";
const ALL_ON: &str = "charts/authedapi/ci/all-on-values.yaml";
/// The CRDs, as `crds/` holds them (the chart's `crds/` and deploy/crd.yaml are copies).
const CRDS: &[&str] = &[
    "crds/authedapi.dev_authedapis.yaml",
    "crds/authedapi.dev_authedapitenants.yaml",
];

/// The rules the operator needs on AuthedApi objects and events: (apiGroups, resources, verbs).
const OPERATOR_RULES: &[(&str, &str, &[&str])] = &[
    (
        "authedapi.dev",
        "authedapis",
        &["get", "list", "watch", "patch"],
    ),
    ("authedapi.dev", "authedapis/status", &["patch"]),
    ("authedapi.dev", "authedapis/finalizers", &["update"]),
    ("events.k8s.io", "events", &["create", "patch"]),
    ("", "configmaps", &["get", "create", "patch", "delete"]),
];

/// The rules of the `-tenants` ClusterRole: read-only, cluster-scoped, whatever
/// watchNamespace says (AuthedApiTenant objects are cluster-scoped; namespaces for their
/// labels).
const TENANT_RULES: &[(&str, &str, &[&str])] = &[
    (
        "authedapi.dev",
        "authedapitenants",
        &["get", "list", "watch"],
    ),
    ("", "namespaces", &["get"]),
];

/// The rule of the leader-election Role.
const LEASE_RULES: &[(&str, &str, &[&str])] = &[(
    "coordination.k8s.io",
    "leases",
    &["get", "list", "watch", "create", "update", "patch"],
)];

/// A name no other test of this run uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `kubectl` pointed at the shared control plane.
fn kubectl() -> Command {
    let mut cmd = control_plane().kubectl().expect("kubectl is built");
    cmd.current_dir(common::repo());
    cmd
}

/// `helm template` of the chart as release `authedapi` in `namespace`, with extra args.
fn render(namespace: &str, extra: &[&str]) -> String {
    run(
        helm()
            .args(["template", "authedapi", CHART, "--namespace", namespace])
            .args(extra),
        None,
    )
}

/// Every non-empty YAML document of `text`, as JSON.
fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("a YAML document"))
        .filter(|doc: &Value| !doc.is_null())
        .collect()
}

/// The documents of `kind`.
fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The one document of `kind` named `name`.
fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<_> = of_kind(docs, kind)
        .into_iter()
        .filter(|d| d["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} {name} in {docs:#?}");
    found[0]
}

/// The sorted kinds of `docs`.
fn kinds(docs: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().expect("a kind").to_owned())
        .collect();
    kinds.sort();
    kinds
}

type Rule = (Vec<String>, Vec<String>, Vec<String>);

/// The rules of a Role or ClusterRole as a set, each with its lists sorted. Panics on any
/// field other than apiGroups, resources and verbs (resourceNames, nonResourceURLs).
fn rules(role: &Value) -> BTreeSet<Rule> {
    let list = |v: &Value| -> Vec<String> {
        let mut items: Vec<String> = v
            .as_array()
            .expect("a list")
            .iter()
            .map(|s| s.as_str().expect("a string").to_owned())
            .collect();
        items.sort();
        items
    };
    role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|rule| {
            let keys: BTreeSet<&str> = rule
                .as_object()
                .expect("a rule")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from(["apiGroups", "resources", "verbs"]),
                "unexpected fields in {rule}"
            );
            (
                list(&rule["apiGroups"]),
                list(&rule["resources"]),
                list(&rule["verbs"]),
            )
        })
        .collect()
}

fn expected(rules: &[(&str, &str, &[&str])]) -> BTreeSet<Rule> {
    rules
        .iter()
        .map(|(group, resource, verbs)| {
            let mut verbs: Vec<String> = verbs.iter().map(|v| v.to_string()).collect();
            verbs.sort();
            (vec![group.to_string()], vec![resource.to_string()], verbs)
        })
        .collect()
}

/// The operator container of a rendered Deployment.
fn container(deployment: &Value) -> &Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

/// The container's environment: name → literal value ("fieldRef:<path>" for downward API).
fn env(deployment: &Value) -> BTreeMap<String, String> {
    container(deployment)["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|var| {
            let name = var["name"].as_str().expect("a name").to_owned();
            let value = match var["value"].as_str() {
                Some(v) => v.to_owned(),
                None => format!(
                    "fieldRef:{}",
                    var["valueFrom"]["fieldRef"]["fieldPath"]
                        .as_str()
                        .expect("a value or a fieldRef")
                ),
            };
            (name, value)
        })
        .collect()
}

fn create_namespace(name: &str) {
    run(kubectl().args(["create", "namespace", name]), None);
}

/// Minimal ServiceMonitor and PrometheusRule CRDs, so the API server can validate the
/// chart's ServiceMonitor and PrometheusRule.
const SERVICE_MONITOR_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names:
    kind: ServiceMonitor
    listKind: ServiceMonitorList
    plural: servicemonitors
    singular: servicemonitor
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: prometheusrules.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names:
    kind: PrometheusRule
    listKind: PrometheusRuleList
    plural: prometheusrules
    singular: prometheusrule
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
";

fn install_service_monitor_crd() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        run(
            kubectl().args(["apply", "--server-side", "-f", "-"]),
            Some(SERVICE_MONITOR_CRD),
        );
        run(
            kubectl().args([
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/servicemonitors.monitoring.coreos.com",
                "crd/prometheusrules.monitoring.coreos.com",
            ]),
            None,
        );
    });
}

/// `kubectl apply --server-side --dry-run=server` of `manifests`; kubectl's output.
fn server_dry_run(manifests: &str) -> String {
    run(
        kubectl().args([
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=authedapi-chart-tests",
            "-f",
            "-",
        ]),
        Some(manifests),
    )
}

fn assert_applied(output: &str, objects: &[&str]) {
    for object in objects {
        assert!(
            output.contains(&format!("{object} serverside-applied (server dry run)")),
            "{object} not applied:\n{output}"
        );
    }
}

#[test]
fn helm_lint_passes() {
    for extra in [&[][..], &["--strict"], &["--strict", "--values", ALL_ON]] {
        let out = run(helm().args(["lint", CHART]).args(extra), None);
        assert!(
            out.contains("1 chart(s) linted, 0 chart(s) failed"),
            "helm lint {extra:?}:\n{out}"
        );
        assert!(!out.contains("[ERROR]"), "{out}");
        assert!(!out.contains("[WARNING]"), "{out}");
    }
}

#[test]
fn default_values_render_the_documented_settings() {
    let docs = documents(&render("authedapi-system", &[]));
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "Deployment",
            "Service",
            "ServiceAccount",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "ValidatingAdmissionPolicyBinding",
            "ValidatingAdmissionPolicyBinding"
        ]
    );
    let deployment = find(&docs, "Deployment", "authedapi");
    assert_eq!(deployment["metadata"]["namespace"], "authedapi-system");
    assert_eq!(deployment["spec"]["replicas"], 1);
    // One replica without leader election: never two pods at once.
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "authedapi");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = container(deployment);
    assert_eq!(c["image"], "ghcr.io/authedapi/authedapi:0.1.0");
    assert_eq!(c["args"], serde_json::json!(["controller"]));
    assert_eq!(c["ports"][0]["name"], "metrics");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(
        c["resources"],
        serde_json::json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}})
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    let expected_env: BTreeMap<String, String> = [
        ("POD_NAME", "fieldRef:metadata.name"),
        ("POD_NAMESPACE", "fieldRef:metadata.namespace"),
        ("AUTHEDAPI_RESYNC", "10m"),
        ("AUTHEDAPI_CONCURRENCY", "8"),
        ("AUTHEDAPI_METRICS_ADDR", "0.0.0.0:8080"),
        ("AUTHEDAPI_CLUSTER_ID", "default"),
        ("AUTHEDAPI_LOG_FORMAT", "text"),
        ("AUTHEDAPI_LOG_LEVEL", "info"),
        ("AUTHEDAPI_AWS_RATE_LIMITS", "apigateway=10:40"),
        (
            "AUTHEDAPI_PERMISSIONS_BOUNDARY",
            "authedapi-permissions-boundary",
        ),
        ("AUTHEDAPI_DRIFT_CHECK_SHARE", "0.5"),
        ("AUTHEDAPI_OWN_ACCOUNT", "allow"),
        ("AUTHEDAPI_ALLOWED_ISSUERS", "*.auth0.com"),
        // allowedFunctions is empty: no AUTHEDAPI_ALLOWED_FUNCTIONS, the operator allows none.
        ("AWS_REGION", "us-east-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(env(deployment), expected_env);

    let service = find(&docs, "Service", "authedapi-metrics");
    assert_eq!(service["spec"]["ports"][0]["name"], "metrics");
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let account = find(&docs, "ServiceAccount", "authedapi");
    assert!(account["metadata"].get("annotations").is_none());

    // Both admission policies, each bound, denying.
    let limits = find(
        &docs,
        "ValidatingAdmissionPolicy",
        "authedapi-tenant-limits",
    );
    assert_eq!(
        limits["spec"]["paramKind"],
        serde_json::json!({"apiVersion": "authedapi.dev/v1alpha1", "kind": "AuthedApiTenant"})
    );
    assert_eq!(limits["spec"]["failurePolicy"], "Fail");
    assert_eq!(
        limits["spec"]["matchConstraints"]["resourceRules"],
        serde_json::json!([{
            "apiGroups": ["authedapi.dev"],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["authedapis"]
        }])
    );
    let binding = find(
        &docs,
        "ValidatingAdmissionPolicyBinding",
        "authedapi-tenant-limits",
    );
    assert_eq!(
        binding["spec"],
        serde_json::json!({
            "policyName": "authedapi-tenant-limits",
            "validationActions": ["Deny"],
            // Every tenant is a param; a namespace no tenant selects is the operator's to judge.
            "paramRef": {"selector": {}, "parameterNotFoundAction": "Allow"}
        })
    );
    let writes = find(
        &docs,
        "ValidatingAdmissionPolicy",
        "authedapi-operator-writes",
    );
    assert_eq!(writes["spec"]["failurePolicy"], "Fail");
    assert_eq!(
        writes["spec"]["matchConditions"],
        serde_json::json!([{
            "name": "by-the-operator",
            "expression": "request.userInfo.username == 'system:serviceaccount:authedapi-system:authedapi'"
        }])
    );
    let binding = find(
        &docs,
        "ValidatingAdmissionPolicyBinding",
        "authedapi-operator-writes",
    );
    assert_eq!(
        binding["spec"],
        serde_json::json!({"policyName": "authedapi-operator-writes", "validationActions": ["Deny"]})
    );
    // Never in the cluster's own namespaces.
    assert_eq!(
        variable(writes, "protected"),
        r#"["kube-system","kube-public","kube-node-lease"]"#
    );
    // The outputs are checked against every AuthedApi of their namespace, and refused in a
    // namespace without one; only labelled ConfigMaps are looked at (the API server looks
    // params up before matchConditions, for every writer).
    let outputs = find(
        &docs,
        "ValidatingAdmissionPolicy",
        "authedapi-operator-outputs",
    );
    assert_eq!(
        outputs["spec"]["paramKind"],
        serde_json::json!({"apiVersion": "authedapi.dev/v1alpha1", "kind": "AuthedApi"})
    );
    assert_eq!(outputs["spec"]["failurePolicy"], "Fail");
    assert_eq!(
        outputs["spec"]["matchConditions"],
        writes["spec"]["matchConditions"]
    );
    let binding = find(
        &docs,
        "ValidatingAdmissionPolicyBinding",
        "authedapi-operator-outputs",
    );
    assert_eq!(
        binding["spec"],
        serde_json::json!({
            "policyName": "authedapi-operator-outputs",
            "validationActions": ["Deny"],
            "matchResources": {"objectSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "authedapi"}}},
            "paramRef": {"selector": {}, "parameterNotFoundAction": "Deny"}
        })
    );
}

/// The CEL expression of the admission policy's variable `name`.
fn variable<'a>(policy: &'a Value, name: &str) -> &'a Value {
    &policy["spec"]["variables"]
        .as_array()
        .expect("variables")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no variable {name}"))["expression"]
}

#[test]
fn more_protected_namespaces_are_added_to_the_clusters_own() {
    let docs = documents(&render(
        "platform",
        &[
            "--set",
            "admissionPolicies.protectedNamespaces={platform,ingress}",
        ],
    ));
    let writes = find(
        &docs,
        "ValidatingAdmissionPolicy",
        "authedapi-operator-writes",
    );
    assert_eq!(
        variable(writes, "protected"),
        r#"["kube-system","kube-public","kube-node-lease","platform","ingress"]"#
    );
}

#[test]
fn more_than_one_replica_brings_a_disruption_budget_and_spreads_over_nodes() {
    let one = documents(&render("authedapi-system", &[]));
    assert!(of_kind(&one, "PodDisruptionBudget").is_empty());
    let pod = &find(&one, "Deployment", "authedapi")["spec"]["template"]["spec"];
    assert!(pod.get("affinity").is_none(), "{pod}");

    let two = documents(&render("authedapi-system", &["--set", "replicas=2"]));
    let budget = find(&two, "PodDisruptionBudget", "authedapi");
    assert_eq!(budget["spec"]["minAvailable"], 1);
    let deployment = find(&two, "Deployment", "authedapi");
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["affinity"],
        serde_json::json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}
            }
        }]}})
    );
    // An affinity of one's own replaces it.
    let own = documents(&render(
        "authedapi-system",
        &[
            "--set",
            "replicas=2",
            "--set-json",
            r#"affinity={"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"pool","operator":"In","values":["system"]}]}]}}}"#,
        ],
    ));
    let affinity = &find(&own, "Deployment", "authedapi")["spec"]["template"]["spec"]["affinity"];
    assert!(affinity.get("podAntiAffinity").is_none(), "{affinity}");
    assert!(affinity.get("nodeAffinity").is_some(), "{affinity}");
}

#[test]
fn admission_policies_are_turned_off_only_with_an_acknowledgement() {
    let err = render_error(&["--set", "admissionPolicies.enabled=false"]);
    assert!(
        err.contains("admissionPolicies.enabled=false takes away what RBAC cannot say")
            && err.contains("any ConfigMap in any namespace")
            && err.contains("admissionPolicies.acknowledgeDisabled=true"),
        "{err}"
    );
    let docs = documents(&render(
        "authedapi-system",
        &[
            "--set",
            "admissionPolicies.enabled=false",
            "--set",
            "admissionPolicies.acknowledgeDisabled=true",
        ],
    ));
    assert!(of_kind(&docs, "ValidatingAdmissionPolicy").is_empty());
    assert!(of_kind(&docs, "ValidatingAdmissionPolicyBinding").is_empty());
    // Everything else is still there.
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "Deployment",
            "Service",
            "ServiceAccount"
        ]
    );
}

#[test]
fn cluster_role_has_exactly_the_operator_rules() {
    let docs = documents(&render("authedapi-system", &[]));
    let names = |kind: &str| -> Vec<&str> {
        let mut names: Vec<&str> = of_kind(&docs, kind)
            .iter()
            .map(|d| d["metadata"]["name"].as_str().expect("a name"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("ClusterRole"), ["authedapi", "authedapi-tenants"]);
    assert_eq!(
        names("ClusterRoleBinding"),
        ["authedapi", "authedapi-tenants"]
    );
    assert_eq!(
        rules(find(&docs, "ClusterRole", "authedapi")),
        expected(OPERATOR_RULES)
    );
    assert_eq!(
        rules(find(&docs, "ClusterRole", "authedapi-tenants")),
        expected(TENANT_RULES)
    );
    assert!(of_kind(&docs, "Role").is_empty(), "no Role by default");

    for name in ["authedapi", "authedapi-tenants"] {
        let binding = find(&docs, "ClusterRoleBinding", name);
        assert_eq!(
            binding["roleRef"],
            serde_json::json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name})
        );
        assert_eq!(
            binding["subjects"],
            serde_json::json!([{"kind": "ServiceAccount", "name": "authedapi", "namespace": "authedapi-system"}])
        );
    }
}

#[test]
fn watch_namespace_uses_a_role_there() {
    let docs = documents(&render(
        "authedapi-system",
        &["--set", "watchNamespace=apis"],
    ));
    // AuthedApiTenants and namespaces are cluster-scoped: their read-only ClusterRole stays,
    // and it is the only one.
    let cluster_roles = of_kind(&docs, "ClusterRole");
    assert_eq!(cluster_roles.len(), 1, "{cluster_roles:#?}");
    assert_eq!(cluster_roles[0]["metadata"]["name"], "authedapi-tenants");
    assert_eq!(rules(cluster_roles[0]), expected(TENANT_RULES));
    let cluster_bindings = of_kind(&docs, "ClusterRoleBinding");
    assert_eq!(cluster_bindings.len(), 1, "{cluster_bindings:#?}");
    assert_eq!(cluster_bindings[0]["metadata"]["name"], "authedapi-tenants");
    assert_eq!(cluster_bindings[0]["roleRef"]["name"], "authedapi-tenants");
    assert_eq!(
        cluster_bindings[0]["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "authedapi", "namespace": "authedapi-system"}])
    );
    // What the operator does with AuthedApis: in the watched namespace only.
    assert_eq!(of_kind(&docs, "Role").len(), 1, "one Role");
    let role = find(&docs, "Role", "authedapi");
    assert_eq!(role["metadata"]["namespace"], "apis");
    assert_eq!(rules(role), expected(OPERATOR_RULES));
    let binding = find(&docs, "RoleBinding", "authedapi");
    assert_eq!(binding["metadata"]["namespace"], "apis");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["roleRef"]["name"], "authedapi");
    assert_eq!(binding["subjects"][0]["namespace"], "authedapi-system");
    let deployment = find(&docs, "Deployment", "authedapi");
    assert_eq!(env(deployment)["AUTHEDAPI_NAMESPACE"], "apis");
}

#[test]
fn leader_election_is_on_with_replicas_or_when_asked() {
    for (args, on) in [
        (&[][..], false),
        (&["--set", "replicas=2"][..], true),
        (&["--set", "leaderElection.enabled=true"][..], true),
    ] {
        let docs = documents(&render("authedapi-system", args));
        let deployment = find(&docs, "Deployment", "authedapi");
        let env = env(deployment);
        let roles = of_kind(&docs, "Role");
        if on {
            assert_eq!(
                env.get("AUTHEDAPI_LEADER_ELECT").map(String::as_str),
                Some("true"),
                "{args:?}"
            );
            let role = find(&docs, "Role", "authedapi-leader-election");
            assert_eq!(role["metadata"]["namespace"], "authedapi-system");
            assert_eq!(rules(role), expected(LEASE_RULES));
            let binding = find(&docs, "RoleBinding", "authedapi-leader-election");
            assert_eq!(binding["metadata"]["namespace"], "authedapi-system");
            assert_eq!(binding["roleRef"]["name"], "authedapi-leader-election");
            assert_eq!(binding["subjects"][0]["name"], "authedapi");
            // Several pods may run during a rollout: the lease keeps one reconciling.
            assert!(deployment["spec"].get("strategy").is_none(), "{args:?}");
        } else {
            assert!(!env.contains_key("AUTHEDAPI_LEADER_ELECT"), "{args:?}");
            assert!(roles.is_empty(), "no lease Role without leader election");
        }
    }
}

#[test]
fn default_render_is_accepted_by_the_api_server() {
    let namespace = unique("chart-default");
    create_namespace(&namespace);
    let rendered = render(&namespace, &["--include-crds"]);
    let out = server_dry_run(&rendered);
    assert_applied(
        &out,
        &[
            "customresourcedefinition.apiextensions.k8s.io/authedapis.authedapi.dev",
            "customresourcedefinition.apiextensions.k8s.io/authedapitenants.authedapi.dev",
            "serviceaccount/authedapi",
            "clusterrole.rbac.authorization.k8s.io/authedapi",
            "clusterrolebinding.rbac.authorization.k8s.io/authedapi",
            "clusterrole.rbac.authorization.k8s.io/authedapi-tenants",
            "clusterrolebinding.rbac.authorization.k8s.io/authedapi-tenants",
            "service/authedapi-metrics",
            "deployment.apps/authedapi",
            "validatingadmissionpolicy.admissionregistration.k8s.io/authedapi-tenant-limits",
            "validatingadmissionpolicybinding.admissionregistration.k8s.io/authedapi-tenant-limits",
            "validatingadmissionpolicy.admissionregistration.k8s.io/authedapi-operator-writes",
            "validatingadmissionpolicybinding.admissionregistration.k8s.io/authedapi-operator-writes",
            "validatingadmissionpolicy.admissionregistration.k8s.io/authedapi-operator-outputs",
            "validatingadmissionpolicybinding.admissionregistration.k8s.io/authedapi-operator-outputs",
        ],
    );
    assert_eq!(out.lines().count(), 15, "{out}");
}

#[test]
fn all_on_render_is_accepted_by_the_api_server() {
    install_service_monitor_crd();
    let namespace = unique("chart-all-on");
    let watched = unique("chart-watched");
    create_namespace(&namespace);
    create_namespace(&watched);
    let rendered = render(
        &namespace,
        &[
            "--values",
            ALL_ON,
            "--set",
            &format!("watchNamespace={watched}"),
        ],
    );
    let docs = documents(&rendered);
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "PrometheusRule",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "ValidatingAdmissionPolicyBinding",
            "ValidatingAdmissionPolicyBinding"
        ]
    );
    let deployment = find(&docs, "Deployment", "authedapi");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let env = env(deployment);
    for (name, value) in [
        ("AUTHEDAPI_NAMESPACE", watched.as_str()),
        ("AUTHEDAPI_LEADER_ELECT", "true"),
        ("AUTHEDAPI_LEASE_DURATION", "20s"),
        ("AUTHEDAPI_AWS_RATE_LIMITS", "apigateway=5:20,iam=5"),
        ("AUTHEDAPI_RESYNC", "5m"),
        ("AUTHEDAPI_CONCURRENCY", "4"),
        ("AUTHEDAPI_CLUSTER_ID", "ci"),
        ("AUTHEDAPI_LOG_FORMAT", "json"),
        ("AUTHEDAPI_LOG_LEVEL", "info,authedapi=debug"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL", "http://aws-emulator.test.svc:5000"),
        ("AWS_STS_REGIONAL_ENDPOINTS", "regional"),
        (
            "AUTHEDAPI_PERMISSIONS_BOUNDARY",
            "arn:aws:iam::123456789012:policy/platform/authedapi-boundary",
        ),
        ("AUTHEDAPI_ALLOWED_ISSUERS", "*.auth0.com,login.example.com"),
        (
            "AUTHEDAPI_ALLOWED_FUNCTIONS",
            "arn:aws:lambda:eu-west-1:123456789012:function:team-a-*,\
             arn:aws:lambda:eu-west-1:123456789012:function:shared-auth",
        ),
    ] {
        assert_eq!(env.get(name).map(String::as_str), Some(value), "{name}");
    }
    let pod = &deployment["spec"]["template"];
    assert_eq!(
        pod["metadata"]["annotations"]["example.com/owner"],
        "platform"
    );
    assert_eq!(pod["metadata"]["labels"]["example.com/team"], "platform");
    assert_eq!(pod["spec"]["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(pod["spec"]["tolerations"][0]["key"], "CriticalAddonsOnly");
    assert!(pod["spec"]["affinity"]["podAntiAffinity"].is_object());
    // A digest wins over the tag; the tag still names the version in the labels.
    assert_eq!(
        container(deployment)["image"],
        "ghcr.io/authedapi/authedapi@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/version"],
        "0.1.0-test"
    );
    assert_eq!(
        find(&docs, "ServiceAccount", "authedapi")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/authedapi"
    );
    assert_eq!(
        find(&docs, "Role", "authedapi")["metadata"]["namespace"],
        watched.as_str()
    );
    let monitor = find(&docs, "ServiceMonitor", "authedapi");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(
        find(&docs, "PodDisruptionBudget", "authedapi")["spec"]["minAvailable"],
        1
    );
    let policy = &find(&docs, "NetworkPolicy", "authedapi")["spec"];
    assert_eq!(
        policy["ingress"][0]["from"],
        serde_json::json!([{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
        }])
    );
    assert_eq!(
        policy["egress"][1]["ports"],
        serde_json::json!([
            {"port": 443, "protocol": "TCP"},
            {"port": 6443, "protocol": "TCP"},
            {"port": 8443, "protocol": "TCP"}
        ])
    );
    assert_eq!(
        policy["egress"][2],
        serde_json::json!({
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "test"}}}],
            "ports": [{"port": 5000, "protocol": "TCP"}]
        })
    );
    assert_eq!(policy["egress"].as_array().unwrap().len(), 3);
    // The operator-writes policy names the operator's ServiceAccount in the release namespace.
    assert_eq!(
        find(
            &docs,
            "ValidatingAdmissionPolicy",
            "authedapi-operator-writes"
        )["spec"]["matchConditions"][0]["expression"],
        format!("request.userInfo.username == 'system:serviceaccount:{namespace}:authedapi'")
            .as_str()
    );

    let out = server_dry_run(&rendered);
    assert_applied(
        &out,
        &[
            "serviceaccount/authedapi",
            "role.rbac.authorization.k8s.io/authedapi",
            "rolebinding.rbac.authorization.k8s.io/authedapi",
            "role.rbac.authorization.k8s.io/authedapi-leader-election",
            "rolebinding.rbac.authorization.k8s.io/authedapi-leader-election",
            "service/authedapi-metrics",
            "deployment.apps/authedapi",
            "servicemonitor.monitoring.coreos.com/authedapi",
            "prometheusrule.monitoring.coreos.com/authedapi",
            "configmap/authedapi-dashboard",
            "poddisruptionbudget.policy/authedapi",
            "clusterrole.rbac.authorization.k8s.io/authedapi-tenants",
            "clusterrolebinding.rbac.authorization.k8s.io/authedapi-tenants",
            "networkpolicy.networking.k8s.io/authedapi",
            "validatingadmissionpolicy.admissionregistration.k8s.io/authedapi-tenant-limits",
            "validatingadmissionpolicybinding.admissionregistration.k8s.io/authedapi-tenant-limits",
            "validatingadmissionpolicy.admissionregistration.k8s.io/authedapi-operator-writes",
            "validatingadmissionpolicybinding.admissionregistration.k8s.io/authedapi-operator-writes",
            "validatingadmissionpolicy.admissionregistration.k8s.io/authedapi-operator-outputs",
            "validatingadmissionpolicybinding.admissionregistration.k8s.io/authedapi-operator-outputs",
        ],
    );
    assert_eq!(out.lines().count(), 20, "{out}");
}

/// `kubectl auth can-i VERB RESOURCE` as the ServiceAccount `account` of `namespace`, in
/// `in_namespace`. RESOURCE may name a subresource: `authedapis.authedapi.dev/status`.
fn can_i(namespace: &str, account: &str, verb: &str, resource: &str, in_namespace: &str) -> bool {
    // kubectl reads `resource/x` as the object named x: a subresource is a flag of its own.
    let (resource, subresource) = match resource.split_once('/') {
        Some((resource, sub)) => (resource, Some(format!("--subresource={sub}"))),
        None => (resource, None),
    };
    let (_, out, err) = try_run(
        kubectl()
            .args([
                "auth",
                "can-i",
                verb,
                resource,
                "--namespace",
                in_namespace,
                &format!("--as=system:serviceaccount:{namespace}:{account}"),
            ])
            .args(subresource),
        None,
    );
    match out.trim() {
        "yes" => true,
        "no" => false,
        other => panic!("kubectl auth can-i {verb} {resource}: {other}\n{err}"),
    }
}

/// The names of the objects that exist among `objects` (kind/name), in `namespace`.
fn existing(namespace: &str, objects: &[String]) -> Vec<String> {
    let out = run(
        kubectl()
            .args([
                "get",
                "--ignore-not-found",
                "-o",
                "name",
                "--namespace",
                namespace,
            ])
            .args(objects),
        None,
    );
    let mut names: Vec<String> = out.lines().map(str::to_owned).collect();
    names.sort();
    names
}

#[test]
fn helm_install_upgrade_and_uninstall() {
    let plane = control_plane();
    let kubeconfig = plane.kubeconfig.display().to_string();
    let namespace = unique("chart-install");
    let release = unique("it");
    let name = format!("{release}-authedapi");
    let helm_in = |args: &[&str]| {
        run(
            helm()
                .args(args)
                .args(["--kubeconfig", &kubeconfig, "--namespace", &namespace]),
            None,
        )
    };

    let out = helm_in(&["install", &release, CHART, "--create-namespace"]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    let mut objects = vec![
        format!("deployment.apps/{name}"),
        format!("serviceaccount/{name}"),
        format!("service/{name}-metrics"),
        format!("clusterrole.rbac.authorization.k8s.io/{name}"),
        format!("clusterrolebinding.rbac.authorization.k8s.io/{name}"),
        format!("clusterrole.rbac.authorization.k8s.io/{name}-tenants"),
        format!("clusterrolebinding.rbac.authorization.k8s.io/{name}-tenants"),
        format!("validatingadmissionpolicy.admissionregistration.k8s.io/{name}-tenant-limits"),
        format!(
            "validatingadmissionpolicybinding.admissionregistration.k8s.io/{name}-tenant-limits"
        ),
        format!("validatingadmissionpolicy.admissionregistration.k8s.io/{name}-operator-writes"),
        format!(
            "validatingadmissionpolicybinding.admissionregistration.k8s.io/{name}-operator-writes"
        ),
        format!("validatingadmissionpolicy.admissionregistration.k8s.io/{name}-operator-outputs"),
        format!(
            "validatingadmissionpolicybinding.admissionregistration.k8s.io/{name}-operator-outputs"
        ),
    ];
    objects.sort();
    assert_eq!(existing(&namespace, &objects), objects);
    // Helm installs both CRDs from the chart's crds/.
    run(
        kubectl().args([
            "get",
            "crd",
            "authedapis.authedapi.dev",
            "authedapitenants.authedapi.dev",
        ]),
        None,
    );

    // The bindings give the ServiceAccount what the operator needs, in any namespace, and
    // nothing else.
    let elsewhere = "default";
    for (verb, resource) in [
        ("list", "authedapis.authedapi.dev"),
        ("watch", "authedapis.authedapi.dev"),
        ("patch", "authedapis.authedapi.dev"),
        ("patch", "authedapis.authedapi.dev/status"),
        ("update", "authedapis.authedapi.dev/finalizers"),
        ("create", "events.events.k8s.io"),
        ("create", "configmaps"),
        ("delete", "configmaps"),
        ("get", "authedapitenants.authedapi.dev"),
        ("list", "authedapitenants.authedapi.dev"),
        ("watch", "authedapitenants.authedapi.dev"),
        ("get", "namespaces"),
    ] {
        assert!(
            can_i(&namespace, &name, verb, resource, elsewhere),
            "cannot {verb} {resource}"
        );
    }
    for (verb, resource) in [
        ("delete", "authedapis.authedapi.dev"),
        ("create", "authedapis.authedapi.dev"),
        ("update", "authedapis.authedapi.dev/status"),
        ("get", "secrets"),
        ("list", "configmaps"),
        ("create", "events"),
        ("create", "leases.coordination.k8s.io"),
        ("create", "authedapitenants.authedapi.dev"),
        ("patch", "authedapitenants.authedapi.dev"),
        ("list", "namespaces"),
        ("patch", "namespaces"),
    ] {
        assert!(
            !can_i(&namespace, &name, verb, resource, &namespace),
            "may {verb} {resource}"
        );
    }

    // Two replicas: leader election, and leases in the release namespace only.
    let out = helm_in(&["upgrade", &release, CHART, "--set", "replicas=2"]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(can_i(
        &namespace,
        &name,
        "create",
        "leases.coordination.k8s.io",
        &namespace
    ));
    assert!(can_i(
        &namespace,
        &name,
        "update",
        "leases.coordination.k8s.io",
        &namespace
    ));
    assert!(!can_i(
        &namespace,
        &name,
        "create",
        "leases.coordination.k8s.io",
        elsewhere
    ));
    assert!(!can_i(
        &namespace,
        &name,
        "delete",
        "leases.coordination.k8s.io",
        &namespace
    ));
    let replicas = run(
        kubectl().args([
            "get",
            "deployment",
            &name,
            "--namespace",
            &namespace,
            "-o",
            "jsonpath={.spec.replicas}",
        ]),
        None,
    );
    assert_eq!(replicas, "2");
    // ...and a disruption budget, so a drain never takes both.
    let budget = vec![format!("poddisruptionbudget.policy/{name}")];
    assert_eq!(existing(&namespace, &budget), budget);

    let out = helm_in(&["uninstall", &release]);
    assert!(out.contains("uninstalled"), "{out}");
    let mut all = objects.clone();
    all.push(format!(
        "role.rbac.authorization.k8s.io/{name}-leader-election"
    ));
    all.push(format!(
        "rolebinding.rbac.authorization.k8s.io/{name}-leader-election"
    ));
    all.push(format!("poddisruptionbudget.policy/{name}"));
    assert_eq!(existing(&namespace, &all), Vec::<String>::new());
    // Helm never deletes what it installed from crds/: AuthedApi and AuthedApiTenant
    // objects survive.
    run(
        kubectl().args([
            "get",
            "crd",
            "authedapis.authedapi.dev",
            "authedapitenants.authedapi.dev",
        ]),
        None,
    );
}

#[test]
fn chart_crd_is_a_copy_of_crds_dir() {
    for crd in CRDS {
        let source = std::fs::read(common::repo().join(crd)).expect("crds/ holds the CRD");
        let copy = std::fs::read(common::repo().join(CHART).join(crd))
            .expect("charts/authedapi/crds/ holds the CRD");
        assert!(
            source == copy,
            "charts/authedapi/{crd} differs from {crd}: run `make deploy`"
        );
    }
    // No other CRD in either, and none left behind in the chart.
    let names: Vec<String> = CRDS
        .iter()
        .map(|crd| crd.trim_start_matches("crds/").to_owned())
        .collect();
    for dir in ["crds", "charts/authedapi/crds"] {
        let have: Vec<String> = files(&common::repo().join(dir)).into_keys().collect();
        assert_eq!(have, names, "{dir}/");
    }
}

/// The files directly in `dir` (not in subdirectories), by name.
fn files(dir: &Path) -> BTreeMap<String, PathBuf> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                path,
            )
        })
        .collect()
}

#[test]
fn deploy_dir_is_rendered_from_the_chart() {
    let out_dir = std::env::temp_dir().join(unique("authedapi-render-deploy"));
    let helm = authedapi_rig::tool("helm").expect("helm is built");
    run(
        Command::new(common::repo().join("hack/render-deploy.sh"))
            .arg(&out_dir)
            .env("HELM", helm),
        None,
    );
    let fresh = files(&out_dir);
    assert_eq!(
        fresh.keys().collect::<Vec<_>>(),
        ["authedapi.yaml", "crd.yaml"]
    );
    for (file, path) in &fresh {
        let want = std::fs::read(path).unwrap();
        // deploy/ holds other files too (argocd/, the IAM policy): compare what the script writes.
        let have = std::fs::read(common::repo().join("deploy").join(file))
            .unwrap_or_else(|e| panic!("deploy/{file}: {e}: run `make deploy`"));
        assert!(want == have, "deploy/{file} is stale: run `make deploy`");
    }
    std::fs::remove_dir_all(&out_dir).ok();

    // What deploy/ holds: the CRDs (those of crds/, one after the other), then a namespace
    // and the operator in it.
    let concatenated = CRDS
        .iter()
        .map(|crd| std::fs::read_to_string(common::repo().join(crd)).unwrap())
        .collect::<Vec<_>>()
        .join("---\n");
    assert!(
        std::fs::read_to_string(common::repo().join("deploy/crd.yaml")).unwrap() == concatenated,
        "deploy/crd.yaml is not crds/ concatenated"
    );
    let crds = documents(&concatenated);
    assert_eq!(
        crds.iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["authedapis.authedapi.dev", "authedapitenants.authedapi.dev"]
    );
    let docs =
        documents(&std::fs::read_to_string(common::repo().join("deploy/authedapi.yaml")).unwrap());
    assert_eq!(docs[0]["kind"], "Namespace");
    assert_eq!(docs[0]["metadata"]["name"], "authedapi-system");
    // Cluster-scoped objects have no namespace; every other one is in authedapi-system.
    const CLUSTER_SCOPED: &[&str] = &[
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ];
    for doc in &docs[1..] {
        if CLUSTER_SCOPED.contains(&doc["kind"].as_str().unwrap()) {
            assert!(doc["metadata"].get("namespace").is_none(), "{doc}");
        } else {
            assert_eq!(doc["metadata"]["namespace"], "authedapi-system", "{doc}");
        }
    }
}

#[test]
fn deploy_manifests_are_accepted_by_the_api_server() {
    // The namespace is in the file itself: a dry run cannot create it, so make it real.
    // (Another test binary's control plane is not this one: the name is free here.)
    let text = std::fs::read_to_string(common::repo().join("deploy/authedapi.yaml")).unwrap();
    let crd = std::fs::read_to_string(common::repo().join("deploy/crd.yaml")).unwrap();
    let (ok, _, err) = try_run(
        kubectl().args(["create", "namespace", "authedapi-system"]),
        None,
    );
    assert!(ok || err.contains("AlreadyExists"), "{err}");
    let out = server_dry_run(&format!("{crd}\n---\n{text}"));
    assert_applied(
        &out,
        &[
            "customresourcedefinition.apiextensions.k8s.io/authedapis.authedapi.dev",
            "customresourcedefinition.apiextensions.k8s.io/authedapitenants.authedapi.dev",
            "namespace/authedapi-system",
            "serviceaccount/authedapi",
            "clusterrole.rbac.authorization.k8s.io/authedapi",
            "clusterrolebinding.rbac.authorization.k8s.io/authedapi",
            "clusterrole.rbac.authorization.k8s.io/authedapi-tenants",
            "clusterrolebinding.rbac.authorization.k8s.io/authedapi-tenants",
            "service/authedapi-metrics",
            "deployment.apps/authedapi",
            "validatingadmissionpolicy.admissionregistration.k8s.io/authedapi-tenant-limits",
            "validatingadmissionpolicybinding.admissionregistration.k8s.io/authedapi-tenant-limits",
            "validatingadmissionpolicy.admissionregistration.k8s.io/authedapi-operator-writes",
            "validatingadmissionpolicybinding.admissionregistration.k8s.io/authedapi-operator-writes",
            "validatingadmissionpolicy.admissionregistration.k8s.io/authedapi-operator-outputs",
            "validatingadmissionpolicybinding.admissionregistration.k8s.io/authedapi-operator-outputs",
        ],
    );
    assert_eq!(out.lines().count(), 16, "{out}");
}

/// `helm template` of the chart with `extra`, which must fail: helm's error output.
fn render_error(extra: &[&str]) -> String {
    let (ok, out, err) = try_run(
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
    assert!(!ok, "helm template {extra:?} succeeded:\n{out}");
    err
}

#[test]
fn the_chart_needs_kubernetes_1_30() {
    let err = render_error(&["--kube-version", "1.29.0"]);
    assert!(err.contains("kubeVersion"), "{err}");
    render("authedapi-system", &["--kube-version", "1.30.0"]);
}

#[test]
fn values_schema_refuses_typos_and_wrong_types() {
    // The defaults and every ci/ values file pass (render panics on a failure).
    render("authedapi-system", &[]);
    let ci = files(&common::repo().join(CHART).join("ci"));
    assert!(ci.contains_key("all-on-values.yaml"), "{ci:?}");
    for path in ci.values() {
        render("authedapi-system", &["--values", path.to_str().unwrap()]);
    }

    // A misspelt value name fails, at the top and inside our own objects, naming it.
    for (set, at, name) in [
        ("resyncc=1m", "at ''", "'resyncc'"),
        ("image.tagg=1.0", "at '/image'", "'tagg'"),
        (
            "networkPolicy.enable=true",
            "at '/networkPolicy'",
            "'enable'",
        ),
        (
            "aws.permissionBoundary=x",
            "at '/aws'",
            "'permissionBoundary'",
        ),
        (
            "serviceMonitor.intervall=1m",
            "at '/serviceMonitor'",
            "'intervall'",
        ),
        (
            "prometheusRule.enable=true",
            "at '/prometheusRule'",
            "'enable'",
        ),
        (
            "grafanaDashboard.label=x",
            "at '/grafanaDashboard'",
            "'label'",
        ),
    ] {
        let err = render_error(&["--set", set]);
        assert!(
            err.contains(at) && err.contains(&format!("additional properties {name} not allowed")),
            "--set {set}:\n{err}"
        );
    }

    // Wrong types, values outside an enum, values the operator would refuse at start.
    for (set, at) in [
        (
            "concurrency=many",
            "at '/concurrency': got string, want integer",
        ),
        ("replicas=two", "at '/replicas'"),
        (
            "admissionPolicies.enabled=yes",
            "at '/admissionPolicies/enabled'",
        ),
        ("allowedIssuers=*.auth0.com", "at '/allowedIssuers'"),
        (
            "podAnnotations.example\\.com/port=8080",
            "at '/podAnnotations/example.com~1port'",
        ),
        (
            "log.format=xml",
            "at '/log/format': value must be one of 'text', 'json'",
        ),
        ("service.type=ExternalName", "at '/service/type'"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy'"),
        ("resync=10 minutes", "at '/resync'"),
        ("resync=0s", "at '/resync'"),
        (
            "leaderElection.leaseDuration=15x",
            "at '/leaderElection/leaseDuration'",
        ),
        ("clusterId=prod cluster", "at '/clusterId'"),
        // --set makes 42 a number: --set-string it.
        ("clusterId=42", "at '/clusterId': got number, want string"),
        ("aws.rateLimits=apigw=5", "at '/aws/rateLimits'"),
        ("aws.permissionsBoundary=", "at '/aws/permissionsBoundary'"),
        ("image.digest=latest", "at '/image/digest'"),
        ("metrics.port=80800", "at '/metrics/port'"),
        ("watchNamespace=Team_A", "at '/watchNamespace'"),
        (
            "prometheusRule.runbookBaseUrl=README.md#x",
            "at '/prometheusRule/runbookBaseUrl'",
        ),
        (
            "grafanaDashboard.labelKey=bad key",
            "at '/grafanaDashboard/labelKey'",
        ),
        // What would make the operator unsafe: every function (of every account), root,
        // privilege.
        ("allowedFunctions={*}", "at '/allowedFunctions/0'"),
        (
            "allowedFunctions={arn:aws:lambda:*:*:function:*}",
            "at '/allowedFunctions/0'",
        ),
        (
            "securityContext.privileged=true",
            "at '/securityContext/privileged': value must be false",
        ),
        (
            "securityContext.allowPrivilegeEscalation=true",
            "at '/securityContext/allowPrivilegeEscalation': value must be false",
        ),
        (
            "securityContext.runAsNonRoot=false",
            "at '/securityContext/runAsNonRoot': value must be true",
        ),
        (
            "securityContext.runAsUser=0",
            "at '/securityContext/runAsUser': minimum: got 0, want 1",
        ),
        (
            "securityContext.capabilities.add={NET_ADMIN}",
            "at '/securityContext/capabilities/add'",
        ),
        (
            "podSecurityContext.runAsUser=0",
            "at '/podSecurityContext/runAsUser': minimum: got 0, want 1",
        ),
        (
            "podSecurityContext.runAsNonRoot=false",
            "at '/podSecurityContext/runAsNonRoot': value must be true",
        ),
        (
            "admissionPolicies.protectedNamespaces={Kube_System}",
            "at '/admissionPolicies/protectedNamespaces/0'",
        ),
    ] {
        let err = render_error(&["--set", set]);
        assert!(err.contains(at), "--set {set}:\n{err}");
    }

    // What the operator accepts passes: plain seconds, a percentage; Kubernetes objects
    // passed through are free-form (the API server checks them) and reach the Deployment.
    let docs = documents(&render(
        "authedapi-system",
        &[
            "--set",
            "resync=600",
            "--set",
            "leaderElection.leaseDuration=1m30s",
            "--set",
            "podDisruptionBudget.enabled=true,podDisruptionBudget.minAvailable=50%",
            "--set",
            "podSecurityContext.fsGroup=65532",
            "--set-json",
            r#"resources={"limits":{"cpu":"1","memory":"1Gi"},"requests":{"cpu":"100m"}}"#,
            "--set-json",
            r#"tolerations=[{"key":"k","operator":"Equal","value":"v","effect":"NoSchedule"}]"#,
            "--set-json",
            r#"extraEnv=[{"name":"NODE","valueFrom":{"fieldRef":{"fieldPath":"spec.nodeName"}}}]"#,
        ],
    ));
    let deployment = find(&docs, "Deployment", "authedapi");
    assert_eq!(env(deployment)["AUTHEDAPI_RESYNC"], "600");
    assert_eq!(env(deployment)["NODE"], "fieldRef:spec.nodeName");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["fsGroup"], 65532);
    assert_eq!(
        pod["tolerations"],
        serde_json::json!([{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}])
    );
    // (Helm merges maps: the default memory request stays.)
    assert_eq!(
        container(deployment)["resources"],
        serde_json::json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "64Mi"}})
    );
    assert_eq!(
        find(&docs, "PodDisruptionBudget", "authedapi")["spec"]["minAvailable"],
        "50%"
    );
}

#[test]
fn image_digest_replaces_the_tag() {
    let digest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    for (args, image, version) in [
        (vec![], "ghcr.io/authedapi/authedapi:0.1.0", "0.1.0"),
        (
            vec!["--set", "image.tag=0.2.0"],
            "ghcr.io/authedapi/authedapi:0.2.0",
            "0.2.0",
        ),
        (
            vec!["--set", &format!("image.digest={digest}")],
            &format!("ghcr.io/authedapi/authedapi@{digest}"),
            "0.1.0",
        ),
        // With both, the digest is what runs; the tag only names the version in labels.
        (
            vec![
                "--set",
                "image.tag=0.2.0",
                "--set",
                &format!("image.digest={digest}"),
                "--set",
                "image.repository=registry.example.com/authedapi",
            ],
            &format!("registry.example.com/authedapi@{digest}"),
            "0.2.0",
        ),
    ] {
        let docs = documents(&render("authedapi-system", &args));
        let deployment = find(&docs, "Deployment", "authedapi");
        assert_eq!(container(deployment)["image"], image, "{args:?}");
        assert_eq!(
            deployment["metadata"]["labels"]["app.kubernetes.io/version"], version,
            "{args:?}"
        );
    }
}

#[test]
fn network_policy_is_optional_and_accepted_by_the_api_server() {
    let docs = documents(&render("authedapi-system", &[]));
    assert!(of_kind(&docs, "NetworkPolicy").is_empty(), "off by default");

    let namespace = unique("chart-netpol");
    create_namespace(&namespace);
    let rendered = render(&namespace, &["--set", "networkPolicy.enabled=true"]);
    let docs = documents(&rendered);
    assert_eq!(of_kind(&docs, "NetworkPolicy").len(), 1);
    let policy = find(&docs, "NetworkPolicy", "authedapi");
    assert_eq!(policy["metadata"]["namespace"], namespace.as_str());
    let deployment = find(&docs, "Deployment", "authedapi");
    assert_eq!(
        policy["spec"],
        serde_json::json!({
            // The operator's pods, and only them.
            "podSelector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]},
            "policyTypes": ["Ingress", "Egress"],
            // Metrics and health, from any namespace of the cluster.
            "ingress": [{
                "ports": [{"port": 8080, "protocol": "TCP"}],
                "from": [{"namespaceSelector": {}}]
            }],
            "egress": [
                // DNS.
                {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
                // AWS, and the Kubernetes API server on 443 or 6443.
                {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]}
            ]
        })
    );
    let out = server_dry_run(&rendered);
    assert_applied(&out, &["networkpolicy.networking.k8s.io/authedapi"]);

    // The metrics port follows metrics.port; metricsFrom replaces "any namespace"; an API
    // server on 443 adds no port; httpsTo narrows where HTTPS may go; extraEgress rules come
    // last, as given.
    let rendered = render(
        &namespace,
        &[
            "--set",
            "networkPolicy.enabled=true,metrics.port=9090",
            "--set-json",
            r#"networkPolicy.metricsFrom=[{"podSelector":{"matchLabels":{"app":"prometheus"}}}]"#,
            "--set-json",
            "networkPolicy.apiServerPorts=[443]",
            "--set-json",
            r#"networkPolicy.httpsTo=[{"ipBlock":{"cidr":"10.0.0.0/16"}}]"#,
            "--set-json",
            r#"networkPolicy.extraEgress=[{"to":[{"ipBlock":{"cidr":"169.254.170.23/32"}}],"ports":[{"port":80,"protocol":"TCP"}]}]"#,
        ],
    );
    let docs = documents(&rendered);
    let spec = &find(&docs, "NetworkPolicy", "authedapi")["spec"];
    assert_eq!(
        spec["ingress"],
        serde_json::json!([{
            "ports": [{"port": 9090, "protocol": "TCP"}],
            "from": [{"podSelector": {"matchLabels": {"app": "prometheus"}}}]
        }])
    );
    assert_eq!(
        spec["egress"],
        serde_json::json!([
            {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
            {"ports": [{"port": 443, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "10.0.0.0/16"}}]},
            {
                "to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}],
                "ports": [{"port": 80, "protocol": "TCP"}]
            }
        ])
    );
    let out = server_dry_run(&rendered);
    assert_applied(&out, &["networkpolicy.networking.k8s.io/authedapi"]);
}

/// A YAML file of the repository, as JSON.
fn yaml_file(path: &str) -> Value {
    let text = std::fs::read_to_string(common::repo().join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn artifact_hub_annotations_name_the_image_both_crds_and_the_examples() {
    let chart = yaml_file("charts/authedapi/Chart.yaml");
    let annotations = chart["annotations"].as_object().expect("annotations");
    // Each annotation is a string (Helm requires it); the list-valued ones hold YAML.
    let annotation = |key: &str| -> &str {
        annotations
            .get(key)
            .unwrap_or_else(|| panic!("no {key}"))
            .as_str()
            .unwrap_or_else(|| panic!("{key} is not a string"))
    };
    let parsed = |key: &str| -> Value {
        serde_yaml::from_str(annotation(key)).unwrap_or_else(|e| panic!("{key}: {e}"))
    };
    assert_eq!(annotation("artifacthub.io/license"), "Apache-2.0");
    assert_eq!(annotation("artifacthub.io/operator"), "true");
    assert_eq!(
        annotation("artifacthub.io/operatorCapabilities"),
        "Basic Install"
    );

    // The image: values.yaml's repository at the chart's appVersion (the default tag).
    let values = yaml_file("charts/authedapi/values.yaml");
    let app_version = chart["appVersion"].as_str().expect("appVersion");
    assert_eq!(
        parsed("artifacthub.io/images"),
        serde_json::json!([{
            "name": "authedapi",
            "image": format!("{}:{app_version}", values["image"]["repository"].as_str().unwrap())
        }])
    );

    // Both CRDs, as crds/ defines them.
    let crds = parsed("artifacthub.io/crds");
    let crds = crds.as_array().expect("a list of CRDs");
    assert_eq!(crds.len(), CRDS.len(), "{crds:#?}");
    for path in CRDS {
        let crd = yaml_file(path);
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap();
        let entry = crds
            .iter()
            .find(|c| c["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {crds:#?}"));
        let storage: Vec<&Value> = crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["storage"] == true)
            .collect();
        assert_eq!(entry["version"], storage[0]["name"], "{kind}");
        assert_eq!(entry["name"], crd["metadata"]["name"], "{kind}");
        let keys: BTreeSet<&str> = entry
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["kind", "version", "name", "displayName", "description"]),
            "{kind}"
        );
        for key in ["displayName", "description"] {
            assert!(
                entry[key].as_str().is_some_and(|s| !s.trim().is_empty()),
                "{kind} {key}"
            );
        }
    }

    // The examples are the repository's, unchanged.
    assert_eq!(
        parsed("artifacthub.io/crdsExamples"),
        serde_json::json!([
            yaml_file("examples/authedapi.yaml"),
            yaml_file("examples/tenant.yaml")
        ])
    );
}
