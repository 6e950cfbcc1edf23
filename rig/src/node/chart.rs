//! The operator installed the way users install it, on the rig's node: its image (built by
//! `hack/image.sh`, imported into the node), its Helm chart (`helm install --wait`), the
//! emulator as AWS at the host's end of the node's veth pair, AWS credentials the IRSA way.
//! Used by `tests/node.rs` and by the benchmark (`authedapi-bench --node`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};

use crate::emulator::{Account, Emulator};
use crate::judge::Decision;
use crate::node::{self, Node};
use crate::operator_identity::{self, PolicyOptions, WebIdentity};
use crate::web::Web;
use crate::{repo_root, tool};

/// The audience IRSA tokens carry.
pub const STS_AUDIENCE: &str = "sts.amazonaws.com";
/// The ServiceAccount the operator's IRSA role trusts (as the README's setup names it).
pub const OPERATOR_SERVICE_ACCOUNT: &str = "authedapi";
/// The repository the image is named in.
pub const IMAGE_REPOSITORY: &str = "ghcr.io/authedapi/authedapi";

/// The node, the emulator its pods reach, the web in front of the emulator's data plane,
/// and the operator's image loaded into the node.
pub struct NodeRig {
    pub node: Node,
    pub emulator: Emulator,
    pub web: Web,
    /// The tag of the image loaded.
    pub image_tag: String,
    _web_dir: tempfile::TempDir,
}

/// The image `hack/image.sh` writes for `tag` by default.
pub fn image_archive(tag: &str) -> PathBuf {
    repo_root()
        .join("target/image")
        .join(format!("authedapi-{tag}.oci.tar"))
}

impl NodeRig {
    /// Start the node and the emulator, make the cluster's service-account issuer known to
    /// STS, and load the image at `archive` (tagged `tag`).
    pub async fn start(archive: &Path, tag: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            archive.exists(),
            "{} is missing: `make image` builds the operator's image (make test does)",
            archive.display()
        );
        let node = Node::start().await?;
        let emulator = Emulator::start_on(node.host_ip).await?;
        // STS reads the cluster's service-account keys where a cluster set up for IRSA
        // publishes them: its discovery document (here, the API server's own).
        let ca = std::fs::read_to_string(node.plane.dir().join("ca.crt"))?;
        emulator
            .register_issuer(node::ISSUER_HOST, &node.plane.server, Some(&ca))
            .await?;
        let started = Instant::now();
        node.import_image(archive)?;
        eprintln!(
            "[node] imported {} in {:.1}s",
            archive.display(),
            started.elapsed().as_secs_f64()
        );
        let web_dir = tempfile::Builder::new()
            .prefix("authedapi-web-")
            .tempdir()?;
        let web = Web::start(&emulator.endpoint, web_dir.path()).await?;
        Ok(Self {
            node,
            emulator,
            web,
            image_tag: tag.to_owned(),
            _web_dir: web_dir,
        })
    }

    /// helm, pointed at the node's cluster.
    pub fn helm(&self) -> anyhow::Result<Command> {
        let mut cmd = Command::new(tool("helm")?);
        let home = std::env::temp_dir().join("authedapi-rig-helm");
        cmd.current_dir(repo_root())
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("KUBECONFIG", &self.node.plane.kubeconfig);
        Ok(cmd)
    }
}

/// One installation of the chart: the operator's namespace, the namespace its AuthedApis
/// live in (it watches only that one), its AWS account and IRSA role.
pub struct ChartInstall<'a> {
    pub rig: &'a NodeRig,
    pub release: String,
    pub namespace: String,
    pub apps: String,
    pub account: Account,
    pub role_arn: String,
    pub cluster_id: String,
    /// The Lambda function ARN patterns the operator may target.
    pub functions: Vec<String>,
}

impl<'a> ChartInstall<'a> {
    /// Namespaces, an AWS account, and the operator's IRSA role there (the shipped policy
    /// that `operator` renders for this install's cluster id and account, the account's
    /// functions allowed), trusting tokens of `service_account` in the operator's
    /// namespace.
    pub async fn prepare(
        rig: &'a NodeRig,
        name: &str,
        service_account: &str,
        operator: &Path,
    ) -> anyhow::Result<Self> {
        let account = rig.emulator.new_account();
        let functions = vec![format!(
            "arn:aws:lambda:us-east-1:{}:function:*",
            account.id
        )];
        Self::prepare_in(
            rig,
            name,
            service_account,
            operator,
            account,
            None,
            functions,
        )
        .await
    }

    /// As [`ChartInstall::prepare`], in `account`, for the AuthedApis of the namespace
    /// `apps` (made when `None`), allowing `functions` (ARN patterns).
    pub async fn prepare_in(
        rig: &'a NodeRig,
        name: &str,
        service_account: &str,
        operator: &Path,
        account: Account,
        apps: Option<&str>,
        functions: Vec<String>,
    ) -> anyhow::Result<Self> {
        let client = rig.node.plane.client().await?;
        let suffix = format!("{:x}", rand::random::<u16>());
        let release = format!("{name}-{suffix}");
        let namespace = format!("{name}-op-{suffix}");
        let mut new_namespaces = vec![namespace.clone()];
        let apps = match apps {
            Some(apps) => apps.to_owned(),
            None => {
                new_namespaces.push(format!("{name}-apps-{suffix}"));
                new_namespaces[1].clone()
            }
        };
        let namespaces: Api<Namespace> = Api::all(client);
        for ns in new_namespaces {
            let object = Namespace {
                metadata: ObjectMeta {
                    name: Some(ns),
                    ..Default::default()
                },
                ..Default::default()
            };
            namespaces.create(&PostParams::default(), &object).await?;
        }
        let cluster_id = format!("node-{suffix}");
        let mut policy_args = Vec::new();
        for function in &functions {
            policy_args.extend(["--allowed-function".to_owned(), function.clone()]);
        }
        let role_arn = operator_identity::provision_web_identity_role(
            &account,
            operator,
            &cluster_id,
            &PolicyOptions { args: policy_args },
            &WebIdentity {
                issuer_host: node::ISSUER_HOST.to_owned(),
                subject: format!("system:serviceaccount:{namespace}:{service_account}"),
                audience: STS_AUDIENCE.to_owned(),
                role_name: "authedapi-operator".to_owned(),
            },
        )
        .await?;
        Ok(Self {
            rig,
            release,
            namespace,
            apps,
            account,
            role_arn,
            cluster_id,
            functions,
        })
    }

    /// The chart's values for this install (`--set`s): the loaded image (never pulled),
    /// the emulator as AWS, IRSA with the `authedapi` ServiceAccount, one namespace
    /// watched, the account's functions allowed; then `extra`, which win.
    pub fn values(&self, extra: &[&str]) -> Vec<String> {
        let rig = self.rig;
        let values = [
            format!("image.repository={IMAGE_REPOSITORY}"),
            format!("image.tag={}", rig.image_tag),
            "image.pullPolicy=Never".to_owned(),
            format!("aws.endpointUrl={}", rig.emulator.endpoint),
            format!("aws.webIdentity.roleArn={}", self.role_arn),
            format!("watchNamespace={}", self.apps),
            format!("serviceAccount.name={OPERATOR_SERVICE_ACCOUNT}"),
        ];
        let functions = self
            .functions
            .iter()
            .enumerate()
            .map(|(i, f)| format!("allowedFunctions[{i}]={f}"));
        let values: Vec<String> = values.into_iter().chain(functions).collect();
        let mut args = Vec::new();
        for value in values
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
        {
            args.push("--set".to_owned());
            args.push(value.to_owned());
        }
        args.push("--set-string".to_owned());
        args.push(format!("clusterId={}", self.cluster_id));
        args
    }

    /// `helm install --wait` of the chart with `extra` values; how long it took.
    pub fn install(&self, extra: &[&str]) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let out = self
            .rig
            .helm()?
            .args([
                "install",
                &self.release,
                "charts/authedapi",
                "--namespace",
                &self.namespace,
                "--wait",
                "--timeout",
                "180s",
            ])
            .args(self.values(extra))
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "helm install --wait failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.diagnose()
        );
        Ok(started.elapsed())
    }

    /// `helm uninstall --wait`.
    pub fn uninstall(&self) -> anyhow::Result<()> {
        let out = self
            .rig
            .helm()?
            .args([
                "uninstall",
                &self.release,
                "--namespace",
                &self.namespace,
                "--wait",
            ])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "helm uninstall failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// What the operator's pods and the node say, for a failure's message.
    pub fn diagnose(&self) -> String {
        let plane = &self.rig.node.plane;
        let ns = self.namespace.as_str();
        let pods = plane
            .run_kubectl(&["get", "pods", "-o", "wide", "-n", ns])
            .unwrap_or_default();
        let describe = plane
            .run_kubectl(&["describe", "pods", "-n", ns])
            .unwrap_or_default();
        let logs = plane
            .run_kubectl(&[
                "logs",
                "-n",
                ns,
                "-l",
                "app.kubernetes.io/name=authedapi",
                "--tail=40",
                "--all-containers",
                "--prefix",
            ])
            .unwrap_or_default();
        format!(
            "--- pods ---\n{pods}\n--- describe ---\n{describe}\n--- logs ---\n{logs}\n--- kubelet ---\n{}",
            self.rig.node.log_tail("kubelet", 20)
        )
    }

    /// The operator's pods.
    pub async fn pods(&self) -> anyhow::Result<Vec<Pod>> {
        let pods: Api<Pod> = Api::namespaced(self.rig.node.plane.client().await?, &self.namespace);
        Ok(pods
            .list(&ListParams::default().labels("app.kubernetes.io/name=authedapi"))
            .await?
            .items)
    }

    /// A pod's /metrics (pod addresses are routed from the host, as from a cluster's
    /// nodes).
    pub async fn metrics(&self, pod: &Pod) -> anyhow::Result<String> {
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .ok_or_else(|| anyhow::anyhow!("the pod has no address"))?;
        Ok(reqwest::Client::builder()
            .no_proxy()
            .build()?
            .get(format!("http://{ip}:8080/metrics"))
            .send()
            .await?
            .text()
            .await?)
    }

    /// The judge's decisions about requests in this install's account.
    pub fn decisions(&self) -> Vec<Decision> {
        let marker = format!(":{}:", self.account.id);
        self.rig
            .emulator
            .judge
            .decisions()
            .into_iter()
            .filter(|d| d.principal.contains(&marker))
            .collect()
    }
}
