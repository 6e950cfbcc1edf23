//! A real one-node Kubernetes cluster on this machine, for the tests that must run the
//! operator as users do: a Pod from its own image.
//!
//! The control plane (etcd, kube-apiserver with the ServiceAccount admission plugin,
//! kube-controller-manager with its token controllers, kube-scheduler) runs on the host;
//! the node (containerd + runc, the CNI bridge, kubelet, kube-proxy in iptables mode)
//! runs in a network namespace and a mount namespace of its own, joined to the host by a
//! veth pair and nothing else: no default route, so pods reach only the host's end of
//! the pair, where the API server and the AWS emulator listen. Images come from archives
//! (`ctr images import`), never a registry. The janitor (`janitor.sh`) makes the
//! namespaces and removes everything (processes, containers, cgroups, files) when the
//! node is dropped or the process that started it dies.
//!
//! Needs root, and what `hack/tools.sh` installs: Debian's containerd, runc, CNI plugins
//! and iptables, and kubelet, kube-controller-manager, kube-scheduler and kube-proxy built
//! at the pinned Kubernetes version, and the pause image.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

pub mod chart;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::Api;

use crate::control_plane::{self, ControlPlane};
use crate::process::Supervised;
use crate::{tool, tools_dir};

/// The node's name in the cluster.
pub const NODE_NAME: &str = "authedapi-node";
/// The service-account issuer of the node's cluster: where STS finds its keys (the rig
/// registers it with the emulator), as an EKS cluster's OIDC issuer.
pub const ISSUER_HOST: &str = "oidc.rig-node.local";
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A running node and its control plane; everything stops and is removed when dropped.
pub struct Node {
    // Field order is drop order: the node's processes, then the control plane, then the
    // janitor, which removes whatever is left.
    kube_proxy: Supervised,
    kubelet: Supervised,
    containerd: Supervised,
    scheduler: Supervised,
    controller_manager: Supervised,
    /// The control plane, listening on [`Node::host_ip`].
    pub plane: ControlPlane,
    _janitor: Janitor,
    /// The host's end of the veth pair: what pods reach (the API server, the emulator).
    pub host_ip: Ipv4Addr,
    /// The node's address.
    pub node_ip: Ipv4Addr,
    /// The service-account issuer (`https://` [`ISSUER_HOST`]).
    pub issuer: String,
    dir: PathBuf,
    socket: PathBuf,
    /// How long the start took, until the node was Ready.
    pub startup: Duration,
}

impl Node {
    /// Start the control plane and the node, and wait until the node is Ready.
    pub async fn start() -> anyhow::Result<Self> {
        let started = Instant::now();
        anyhow::ensure!(
            is_root(),
            "the rig's node needs root (network and mount namespaces, cgroups, containers)"
        );
        for program in [
            "containerd",
            "ctr",
            "runc",
            "iptables",
            "nsenter",
            "unshare",
        ] {
            system_tool(program)?;
        }
        anyhow::ensure!(
            Path::new("/usr/lib/cni/bridge").exists(),
            "/usr/lib/cni/bridge is missing: run hack/tools.sh (it installs Debian's containernetworking-plugins)"
        );
        let pause = pause_image()?;

        let dir = tempfile::Builder::new()
            .prefix("authedapi-node-")
            .tempdir()?
            .keep();
        let (host_ip, node_ip, pod_cidr) = free_subnets()?;
        let id = format!("{:x}", rand::random::<u32>());
        let janitor = Janitor::start(
            &dir,
            &format!("authedapi-node-{id}"),
            &format!("aan{id}"),
            &format!("{host_ip}/30"),
            &format!("{node_ip}/30"),
            &pod_cidr,
        )?;
        let join = |program: &Path, args: &[String]| -> Vec<String> {
            let mut all = vec![
                format!("--target={}", janitor.holder),
                "--net".to_owned(),
                "--mount".to_owned(),
                "--".to_owned(),
                program.display().to_string(),
            ];
            all.extend(args.iter().cloned());
            all
        };
        let nsenter = system_tool("nsenter")?;

        let issuer = format!("https://{ISSUER_HOST}");
        let plane = ControlPlane::start_with(&control_plane::Options {
            address: host_ip,
            nodes: true,
            issuer: issuer.clone(),
        })
        .await?;
        let certs = plane.dir().to_owned();
        let kubeconfig = plane.kubeconfig.display().to_string();

        // containerd, in the node's namespaces, with its state in our directory.
        let socket = dir.join("containerd.sock");
        let config = dir.join("containerd.toml");
        std::fs::write(&config, containerd_config(&dir, &socket))?;
        std::fs::create_dir_all(dir.join("cni/net.d"))?;
        std::fs::write(
            dir.join("cni/net.d/10-rig.conflist"),
            cni_config(&dir, &pod_cidr),
        )?;
        let mut containerd = Supervised::spawn(
            "containerd",
            &nsenter,
            &join(
                &system_tool("containerd")?,
                &[format!("--config={}", config.display())],
            ),
            &dir.join("containerd.log"),
            None,
        )?;
        wait_for(
            "containerd's socket",
            Duration::from_secs(30),
            &mut containerd,
            || socket.exists(),
        )
        .await?;

        import(&socket, &pause)?;

        let controller_manager = Supervised::spawn(
            "kube-controller-manager",
            &tool("kube-controller-manager")?,
            &[
                format!("--kubeconfig={kubeconfig}"),
                // The token controllers: ServiceAccounts, their tokens, kube-root-ca.crt.
                format!(
                    "--service-account-private-key-file={}",
                    certs.join("sa.key").display()
                ),
                format!("--root-ca-file={}", certs.join("ca.crt").display()),
                "--use-service-account-credentials=false".to_owned(),
                "--leader-elect=false".to_owned(),
                "--secure-port=0".to_owned(),
                // Pods of a deleted node-less Deployment go quickly, for the failover tests.
                "--terminated-pod-gc-threshold=10".to_owned(),
                "-v=1".to_owned(),
            ],
            &dir.join("kube-controller-manager.log"),
            None,
        )?;
        let scheduler = Supervised::spawn(
            "kube-scheduler",
            &tool("kube-scheduler")?,
            &[
                format!("--kubeconfig={kubeconfig}"),
                "--leader-elect=false".to_owned(),
                "--secure-port=0".to_owned(),
                "-v=1".to_owned(),
            ],
            &dir.join("kube-scheduler.log"),
            None,
        )?;

        let kubelet_config = dir.join("kubelet.yaml");
        std::fs::write(
            &kubelet_config,
            kubelet_config_yaml(&dir, &socket, &certs.join("ca.crt"), &janitor.cgroup),
        )?;
        std::fs::write(dir.join("resolv.conf"), "")?;
        let kubelet = Supervised::spawn(
            "kubelet",
            &nsenter,
            &join(
                &tool("kubelet")?,
                &[
                    format!("--config={}", kubelet_config.display()),
                    format!("--kubeconfig={kubeconfig}"),
                    format!("--root-dir={}", dir.join("kubelet").display()),
                    format!("--cert-dir={}", dir.join("kubelet/pki").display()),
                    format!("--hostname-override={NODE_NAME}"),
                    format!("--node-ip={node_ip}"),
                    "-v=1".to_owned(),
                ],
            ),
            &dir.join("kubelet.log"),
            None,
        )?;
        let proxy_config = dir.join("kube-proxy.yaml");
        std::fs::write(
            &proxy_config,
            kube_proxy_config_yaml(&kubeconfig, &pod_cidr),
        )?;
        let kube_proxy = Supervised::spawn(
            "kube-proxy",
            &nsenter,
            &join(
                &tool("kube-proxy")?,
                &[
                    format!("--config={}", proxy_config.display()),
                    "-v=1".to_owned(),
                ],
            ),
            &dir.join("kube-proxy.log"),
            None,
        )?;
        let mut node = Self {
            kube_proxy,
            kubelet,
            containerd,
            scheduler,
            controller_manager,
            plane,
            _janitor: janitor,
            host_ip,
            node_ip,
            issuer,
            dir,
            socket,
            startup: Duration::ZERO,
        };
        node.wait_ready().await?;
        node.startup = started.elapsed();
        eprintln!(
            "[rig] node {NODE_NAME} Ready at {node_ip} in {:.1}s (containerd, kubelet, kube-proxy v1.36.3; API server at {})",
            node.startup.as_secs_f64(),
            node.plane.server
        );
        Ok(node)
    }

    /// Load an image archive (OCI or docker) into the node's containerd, so pods with
    /// `imagePullPolicy: Never` (or IfNotPresent) run it without a registry.
    pub fn import_image(&self, archive: &Path) -> anyhow::Result<()> {
        import(&self.socket, archive)
    }

    /// The host pid of a running container's main process, from its id in a pod's status
    /// (`containerd://<id>`, or the id alone): what the tests read `/proc/<pid>` of to see
    /// the process as the kernel runs it (user, capabilities, mounts, environment).
    pub fn container_pid(&self, container_id: &str) -> anyhow::Result<u32> {
        let id = container_id.trim_start_matches("containerd://");
        let out = Command::new(system_tool("ctr")?)
            .arg(format!("--address={}", self.socket.display()))
            .args(["--namespace=k8s.io", "tasks", "ls"])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|fields| fields.first() == Some(&id))
            .and_then(|fields| fields.get(1)?.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no running task {id} in containerd:\n{text}"))
    }

    /// A service-account token as the API server signs them (its issuer, its key and key
    /// id), for `subject` and `audience`, that expired at `expired_at` (seconds since the
    /// epoch): what a pod would present after its token stopped being renewed. The API
    /// server itself issues none shorter than ten minutes.
    pub fn expired_service_account_token(
        &self,
        subject: &str,
        audience: &str,
        expired_at: u64,
    ) -> anyhow::Result<String> {
        use base64::Engine as _;
        use sha2::Digest as _;
        let dir = self.plane.dir();
        let public = std::fs::read_to_string(dir.join("sa.pub"))?;
        let der = base64::engine::general_purpose::STANDARD.decode(
            public
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )?;
        // kube-apiserver's key id: the SHA-256 of the public key's DER, base64url.
        let kid =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der));
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid);
        let claims = serde_json::json!({
            "iss": self.issuer,
            "sub": subject,
            "aud": [audience],
            "iat": expired_at - 3600,
            "nbf": expired_at - 3600,
            "exp": expired_at,
        });
        let key = jsonwebtoken::EncodingKey::from_ec_pem(&std::fs::read(dir.join("sa.key"))?)?;
        Ok(jsonwebtoken::encode(&header, &claims, &key)?)
    }

    /// The node's scratch directory: its components' logs and configuration.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last lines a component (`kubelet`, `containerd`, `kube-proxy`,
    /// `kube-controller-manager`, `kube-scheduler`) logged, for a failing test's message.
    pub fn log_tail(&self, component: &str, lines: usize) -> String {
        let path = self.dir.join(format!("{component}.log"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = self.plane.client().await?;
        let nodes: Api<NodeObject> = Api::all(client);
        let deadline = Instant::now() + NODE_READY_TIMEOUT;
        loop {
            if let Ok(node) = nodes.get(NODE_NAME).await {
                let ready = node
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                if ready {
                    return Ok(());
                }
            }
            for (name, process) in [
                ("kubelet", &mut self.kubelet),
                ("containerd", &mut self.containerd),
                ("kube-proxy", &mut self.kube_proxy),
                ("kube-controller-manager", &mut self.controller_manager),
                ("kube-scheduler", &mut self.scheduler),
            ] {
                anyhow::ensure!(
                    !process.exited(),
                    "{name} exited while the node was starting:\n{}",
                    process.log_tail(30)
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "node {NODE_NAME} not Ready after {NODE_READY_TIMEOUT:?}; kubelet's last lines:\n{}",
                self.kubelet.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The janitor process (`janitor.sh`): it made the node's namespaces and holds the
/// lifeline; when its stdin closes it removes the node.
struct Janitor {
    /// The process holding the node's namespaces.
    holder: u32,
    cgroup: String,
    lifeline: Option<ChildStdin>,
    process: Child,
}

impl Janitor {
    fn start(
        dir: &Path,
        cgroup: &str,
        host_if: &str,
        host_cidr: &str,
        node_cidr: &str,
        pod_cidr: &str,
    ) -> anyhow::Result<Self> {
        let mut process = Command::new("sh")
            .arg("-c")
            .arg(include_str!("janitor.sh"))
            .arg("janitor")
            .arg(dir)
            .args([cgroup, host_if, host_cidr, node_cidr, pod_cidr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the node's janitor")?;
        let lifeline = process.stdin.take();
        let mut line = String::new();
        BufReader::new(process.stdout.take().expect("piped"))
            .read_line(&mut line)
            .context("reading the node's namespace holder")?;
        let holder = match line.trim().parse() {
            Ok(pid) => pid,
            Err(_) => {
                let mut message = String::new();
                if let Some(mut stderr) = process.stderr.take() {
                    use std::io::Read;
                    let _ = stderr.read_to_string(&mut message);
                }
                anyhow::bail!("the node's namespaces could not be made: {message}");
            }
        };
        Ok(Self {
            holder,
            cgroup: cgroup.to_owned(),
            lifeline,
            process,
        })
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        self.lifeline.take();
        let _ = self.process.wait();
    }
}

/// Load an image archive into the containerd listening on `socket`.
fn import(socket: &Path, archive: &Path) -> anyhow::Result<()> {
    let out = Command::new(system_tool("ctr")?)
        .arg(format!("--address={}", socket.display()))
        .args(["--namespace=k8s.io", "images", "import"])
        .arg(archive)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "importing {}: {}{}",
        archive.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Addresses no other node of this machine has: a /30 of 10.201.0.0/16 that no interface
/// of the host is in (the host's end, the node's), and a /24 of 10.244.0.0/16 the host
/// has no route for (the pods').
fn free_subnets() -> anyhow::Result<(Ipv4Addr, Ipv4Addr, String)> {
    let output = |args: &[&str]| -> anyhow::Result<String> {
        Ok(String::from_utf8(
            Command::new("ip").args(args).output()?.stdout,
        )?)
    };
    let addresses = output(&["-o", "-4", "addr"])?;
    let routes = output(&["-4", "route"])?;
    for _ in 0..64 {
        let [a, b] = (rand::random::<u16>() & !3).to_be_bytes();
        let pods = format!("10.244.{}.0/24", rand::random::<u8>());
        let taken = (0..4).any(|i| addresses.contains(&format!(" 10.201.{a}.{}/", b | i)))
            || routes.lines().any(|line| line.starts_with(&pods));
        if !taken {
            return Ok((
                Ipv4Addr::new(10, 201, a, b | 1),
                Ipv4Addr::new(10, 201, a, b | 2),
                pods,
            ));
        }
    }
    anyhow::bail!("no free addresses in 10.201.0.0/16 and 10.244.0.0/16 for the node")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A program of the machine (Debian's packages, which hack/tools.sh installs).
fn system_tool(name: &str) -> anyhow::Result<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| anyhow::anyhow!("{name} is missing: run hack/tools.sh (it installs Debian's containerd, runc, CNI plugins and iptables)"))
}

/// The pause image hack/tools.sh built (Kubernetes's pause.c, static).
fn pause_image() -> anyhow::Result<PathBuf> {
    let path = tools_dir().join("images/pause.oci.tar");
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run hack/tools.sh to build the pause image",
        path.display()
    );
    Ok(path)
}

async fn wait_for(
    what: &str,
    timeout: Duration,
    process: &mut Supervised,
    done: impl Fn() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        anyhow::ensure!(
            !process.exited(),
            "waiting for {what}: the process exited:\n{}",
            process.log_tail(30)
        );
        anyhow::ensure!(
            Instant::now() < deadline,
            "no {what} after {timeout:?}:\n{}",
            process.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The pause image's name, as containerd's config names the sandbox image.
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10.2";

fn containerd_config(dir: &Path, socket: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # This VM's root lacks CAP_SYS_RESOURCE: without this, every sandbox fails to start.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{d}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni/net.d"
"#,
        socket = socket.display()
    )
}

fn cni_config(dir: &Path, pod_cidr: &str) -> String {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "rig",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                // Pods reach the host's end of the veth pair as the node's address.
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": dir.join("cni/ipam").display().to_string()
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    })
    .to_string()
}

fn kubelet_config_yaml(dir: &Path, socket: &Path, ca: &Path, cgroup: &str) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This VM has cgroup v1 (1.36 refuses it by default) and no systemd.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /{cgroup}
failSwapOn: false
containerRuntimeEndpoint: unix://{socket}
podLogsDir: {logs}
resolvConf: {resolv}
clusterDomain: cluster.local
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: false}}
  x509: {{clientCAFile: {ca}}}
authorization: {{mode: AlwaysAllow}}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
# A test machine's disk and memory are what they are: evict only when nearly out.
evictionHard: {{memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
syncFrequency: 10s
fileCheckFrequency: 10s
"#,
        socket = socket.display(),
        logs = dir.join("kubelet/pod-logs").display(),
        resolv = dir.join("resolv.conf").display(),
        ca = ca.display(),
    )
}

fn kube_proxy_config_yaml(kubeconfig: &str, pod_cidr: &str) -> String {
    format!(
        r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {{kubeconfig: {kubeconfig}}}
hostnameOverride: {NODE_NAME}
mode: iptables
clusterCIDR: {pod_cidr}
# conntrack's table size is the host's, not the namespace's: leave it alone.
conntrack: {{maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the janitor promises: when the rig's process goes (its lifeline closes), every
    /// process of the node (in its network namespace, or in its cgroups as containers
    /// are), its cgroups, the veth pair, the route to its pods and its files are gone.
    #[test]
    fn the_janitor_removes_the_node_when_its_lifeline_closes() {
        assert!(is_root(), "the rig's node needs root");
        let dir = tempfile::Builder::new()
            .prefix("authedapi-janitor-")
            .tempdir()
            .unwrap()
            .keep();
        std::fs::write(dir.join("state"), "").unwrap();
        let (host_ip, node_ip, pods) = free_subnets().unwrap();
        let id = format!("{:x}", rand::random::<u32>());
        let (cgroup, host_if) = (format!("authedapi-janitor-{id}"), format!("aan{id}"));
        let janitor = Janitor::start(
            &dir,
            &cgroup,
            &host_if,
            &format!("{host_ip}/30"),
            &format!("{node_ip}/30"),
            &pods,
        )
        .unwrap();
        let links = || {
            String::from_utf8(
                Command::new("ip")
                    .args(["-o", "link"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap()
        };
        let routes = || {
            String::from_utf8(
                Command::new("ip")
                    .args(["-4", "route"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap()
        };
        assert!(links().contains(&host_if));
        assert!(routes().contains(&pods));
        // A process of the node (as kubelet is), and one in its cgroup (as a container is).
        let mut in_namespace = Command::new("nsenter")
            .arg(format!("--target={}", janitor.holder))
            .args(["--net", "--mount", "--", "sleep", "600"])
            .spawn()
            .unwrap();
        let mut in_cgroup = Command::new("sleep").arg("600").spawn().unwrap();
        std::fs::write(
            format!("/sys/fs/cgroup/pids/{cgroup}/cgroup.procs"),
            in_cgroup.id().to_string(),
        )
        .unwrap();

        drop(janitor);

        for child in [&mut in_namespace, &mut in_cgroup] {
            let deadline = Instant::now() + Duration::from_secs(10);
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                assert!(
                    Instant::now() < deadline,
                    "a process of the node outlived it"
                );
                std::thread::sleep(Duration::from_millis(50));
            };
            assert!(!status.success(), "killed: {status:?}");
        }
        assert!(!links().contains(&host_if), "the veth pair is gone");
        assert!(!routes().contains(&pods), "the route to the pods is gone");
        assert!(!Path::new(&format!("/sys/fs/cgroup/pids/{cgroup}")).exists());
        assert!(!Path::new(&format!("/sys/fs/cgroup/memory/{cgroup}")).exists());
        assert!(!dir.exists(), "its files are gone");
    }

    #[test]
    fn free_subnets_are_a_slash_30_and_a_slash_24_of_the_rigs_ranges() {
        let (host, node, pods) = free_subnets().unwrap();
        assert_eq!(host.octets()[..2], [10, 201]);
        assert_eq!(host.octets()[3] & 3, 1);
        assert_eq!(u32::from(node), u32::from(host) + 1);
        assert!(
            pods.starts_with("10.244.") && pods.ends_with(".0/24"),
            "{pods}"
        );
    }
}
