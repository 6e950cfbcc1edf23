//! A real Kubernetes control plane on loopback: etcd and kube-apiserver, started the way
//! controller-runtime's envtest starts them.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::process::Supervised;
use crate::{certs, free_port, tool};

/// How long the API server may take to report ready before we give up.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// etcd + kube-apiserver; both stop when this is dropped (or its owner process dies).
pub struct ControlPlane {
    // Field order is drop order: the API server stops before etcd.
    apiserver: Supervised,
    etcd: Supervised,
    apiserver_args: Vec<String>,
    dir: PathBuf,
    /// The API server's URL, https://127.0.0.1:<port>.
    pub server: String,
    /// A kubeconfig with cluster-admin credentials (group system:masters).
    pub kubeconfig: PathBuf,
    /// How long the start took, until /readyz answered ok.
    pub startup: Duration,
}

/// Where the API server listens and what it does for a cluster with nodes.
#[derive(Clone, Debug)]
pub struct Options {
    /// The address the API server binds and advertises (etcd stays on loopback).
    pub address: Ipv4Addr,
    /// A cluster with nodes ([`crate::node::Node`]): the ServiceAccount admission plugin
    /// on (pods get their ServiceAccount's projected token), the `kubernetes` Service's
    /// endpoints kept by the API server (pods reach it through it), and the service-account
    /// issuer's discovery document and keys readable without credentials, as a cluster set
    /// up for IRSA serves them to STS.
    pub nodes: bool,
    /// The service-account token issuer (`iss` of every token the API server signs).
    pub issuer: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            address: Ipv4Addr::LOCALHOST,
            nodes: false,
            issuer: "https://kubernetes.default.svc.cluster.local".to_owned(),
        }
    }
}

impl ControlPlane {
    /// Start etcd and kube-apiserver on free loopback ports and wait until /readyz is ok.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&Options::default()).await
    }

    /// Start etcd on loopback and kube-apiserver as `options` say, and wait until /readyz
    /// is ok.
    pub async fn start_with(options: &Options) -> anyhow::Result<Self> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("authedapi-rig-")
            .tempdir()?
            .keep();
        let address = options.address.to_string();
        let mut names = vec![address.clone()];
        if options.nodes {
            // How pods reach it: the `kubernetes` Service's cluster IP and DNS names.
            names.extend(
                [
                    "10.0.0.1",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                ]
                .map(str::to_owned),
            );
        }
        let certs = certs::write(&dir, &names)?;

        let etcd_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let etcd_args = vec![
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            "--listen-peer-urls=http://127.0.0.1:0".to_owned(),
            "--unsafe-no-fsync=true".to_owned(),
            "--log-level=warn".to_owned(),
        ];
        // etcd's supervisor owns the scratch directory: it goes when etcd has stopped.
        let etcd = Supervised::spawn(
            "etcd",
            &tool("etcd")?,
            &etcd_args,
            &dir.join("etcd.log"),
            Some(&dir),
        )?;

        let port = free_port()?;
        let server = format!("https://{address}:{port}");
        let mut apiserver_args = vec![
            format!("--etcd-servers={etcd_url}"),
            format!("--bind-address={address}"),
            format!("--advertise-address={address}"),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
            format!("--tls-cert-file={}", certs.serving_cert.display()),
            format!("--tls-private-key-file={}", certs.serving_key.display()),
            format!("--client-ca-file={}", certs.ca_cert.display()),
            "--authorization-mode=RBAC".to_owned(),
            format!("--service-account-issuer={}", options.issuer),
            format!("--service-account-key-file={}", certs.sa_pub.display()),
            format!(
                "--service-account-signing-key-file={}",
                certs.sa_key.display()
            ),
            "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
            "--allow-privileged=true".to_owned(),
            "-v=0".to_owned(),
        ];
        if options.nodes {
            // `kubectl logs` and `exec` go through the API server to the kubelet, which
            // takes client certificates of the rig's CA.
            apiserver_args.extend([
                format!(
                    "--kubelet-client-certificate={}",
                    certs.admin_cert.display()
                ),
                format!("--kubelet-client-key={}", certs.admin_key.display()),
                "--kubelet-preferred-address-types=InternalIP".to_owned(),
            ]);
        } else {
            // As envtest: no controller-manager makes ServiceAccounts, nobody needs the
            // `kubernetes` Service.
            apiserver_args.extend(
                [
                    "--disable-admission-plugins=ServiceAccount",
                    "--endpoint-reconciler-type=none",
                ]
                .map(str::to_owned),
            );
        }
        let apiserver = Supervised::spawn(
            "kube-apiserver",
            &tool("kube-apiserver")?,
            &apiserver_args,
            &dir.join("kube-apiserver.log"),
            None,
        )?;

        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            kubeconfig_yaml(&server, &certs.ca_cert, &certs.admin_cert, &certs.admin_key),
        )?;

        let mut plane = Self {
            apiserver,
            etcd,
            apiserver_args,
            dir,
            server,
            kubeconfig,
            startup: Duration::ZERO,
        };
        plane.wait_ready().await?;
        if options.nodes {
            // What a cluster set up for IRSA does, so STS can read the issuer's keys.
            plane.run_kubectl(&[
                "create",
                "clusterrolebinding",
                "service-account-issuer-discovery-unauthenticated",
                "--clusterrole=system:service-account-issuer-discovery",
                "--group=system:unauthenticated",
            ])?;
        }
        plane.startup = started.elapsed();
        eprintln!(
            "[rig] control plane ready at {} in {:.2}s (etcd + kube-apiserver v1.36.3)",
            plane.server,
            plane.startup.as_secs_f64()
        );
        Ok(plane)
    }

    /// A client with cluster-admin rights, bound to the calling tokio runtime.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        client_from_kubeconfig(&self.kubeconfig).await
    }

    /// The scratch directory (certificates, logs, kubeconfig).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `kubectl` pointed at this control plane.
    pub fn kubectl(&self) -> anyhow::Result<Command> {
        let mut cmd = Command::new(tool("kubectl")?);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        Ok(cmd)
    }

    /// Run kubectl against this control plane; its stdout, or an error with everything
    /// it printed.
    pub fn run_kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .kubectl()?
            .args(args)
            .output()
            .map_err(|e| anyhow::anyhow!("running kubectl: {e}"))?;
        anyhow::ensure!(
            out.status.success(),
            "kubectl {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Install the CRDs of `crds/` and wait until the API server serves them.
    pub fn install_crds(&self) -> anyhow::Result<()> {
        let crds = crate::repo_root().join("crds");
        self.run_kubectl(&["apply", "--server-side", "-f", &crds.display().to_string()])?;
        self.run_kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/authedapis.authedapi.dev",
            "crd/authedapitenants.authedapi.dev",
        ])?;
        Ok(())
    }

    /// Stop the API server (etcd keeps the data) and start it again on the same port:
    /// every watch breaks, as in a control-plane upgrade.
    pub async fn restart_apiserver(&mut self) -> anyhow::Result<()> {
        self.apiserver.stop();
        self.apiserver = Supervised::spawn(
            "kube-apiserver",
            &tool("kube-apiserver")?,
            &self.apiserver_args,
            &self.dir.join("kube-apiserver.log"),
            None,
        )?;
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let client = self.client().await?;
        loop {
            let probe = http::Request::get("/readyz").body(Vec::new())?;
            match client.request_text(probe).await {
                Ok(body) if body.trim() == "ok" => return Ok(()),
                _ if self.apiserver.exited() || self.etcd.exited() => anyhow::bail!(
                    "the control plane exited while starting.\n--- kube-apiserver ---\n{}\n--- etcd ---\n{}",
                    self.apiserver.log_tail(30),
                    self.etcd.log_tail(30)
                ),
                _ if Instant::now() > deadline => anyhow::bail!(
                    "kube-apiserver not ready after {READY_TIMEOUT:?}; last log lines:\n{}",
                    self.apiserver.log_tail(30)
                ),
                // Poll, as envtest does; the API server answers within milliseconds once up.
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// A client for the cluster a kubeconfig file points at.
pub async fn client_from_kubeconfig(path: &Path) -> anyhow::Result<kube::Client> {
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(path)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}

fn kubeconfig_yaml(server: &str, ca: &Path, cert: &Path, key: &Path) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: rig
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: admin
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: rig
  context:
    cluster: rig
    user: admin
    namespace: default
current-context: rig
",
        ca = ca.display(),
        cert = cert.display(),
        key = key.display(),
    )
}
