//! Child processes that die with their parent.
//!
//! Each server runs under a tiny `sh` supervisor whose stdin is a pipe from us. When that
//! pipe closes, which happens when we drop the handle or when our process exits for any
//! reason (the kernel closes the pipe, even on SIGKILL), the supervisor stops the server.
//! When the server exits, the supervisor exits with its code and removes its scratch
//! directory. No signal handling, no unsafe code.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

const SUPERVISOR: &str = r#"
# Ctrl-C reaches the whole process group: the server stops through the lifeline, and the
# supervisor must live on to remove the scratch directory after it.
trap '' INT
cleanup=$1; shift
exec 3<&0
"$@" 3<&- &
server=$!
# The lifeline: when our stdin closes, stop the server, forcibly if it lingers (an API
# server whose etcd is gone can hang in shutdown). A background job's stdin is /dev/null
# unless redirected, hence fd 3.
# A line written to it names the signal to send first (e.g. KILL to simulate a crash).
( read -r sig <&3; kill -"${sig:-TERM}" "$server" 2>/dev/null; sleep 5; kill -KILL "$server" 2>/dev/null ) &
lifeline=$!
wait "$server"
code=$?
kill "$lifeline" 2>/dev/null
[ -n "$cleanup" ] && rm -rf "$cleanup"
exit $code
"#;

/// A supervised server process; dropping it stops the server.
pub struct Supervised {
    log: PathBuf,
    lifeline: Option<ChildStdin>,
    supervisor: Child,
}

impl Supervised {
    /// Start `program args...`, output to `log`; `cleanup`, if given, is removed once the
    /// server has stopped.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        log: &Path,
        cleanup: Option<&Path>,
    ) -> anyhow::Result<Self> {
        Self::spawn_with_env(name, program, args, &[], log, cleanup)
    }

    /// Like [`Supervised::spawn`], with extra environment variables for the server.
    pub fn spawn_with_env(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        log: &Path,
        cleanup: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let out = File::create(log)?;
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("supervisor")
            .arg(
                cleanup
                    .map(|p| p.as_os_str().to_owned())
                    .unwrap_or_default(),
            )
            .arg(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {name} ({}): {e}", program.display()))?;
        let lifeline = supervisor.stdin.take();
        Ok(Self {
            log: log.to_owned(),
            lifeline,
            supervisor,
        })
    }

    /// Whether the supervised server has exited on its own.
    pub fn exited(&mut self) -> bool {
        matches!(self.supervisor.try_wait(), Ok(Some(_)))
    }

    /// The last lines the server wrote, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let Ok(file) = File::open(&self.log) else {
            return String::new();
        };
        let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stop the server (SIGTERM, then SIGKILL after 5s) and wait until it is gone.
    pub fn stop(&mut self) {
        self.lifeline.take();
        let _ = self.supervisor.wait();
    }

    /// Kill the server with SIGKILL, as a crash would, and wait until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut lifeline) = self.lifeline.take() {
            use std::io::Write;
            let _ = lifeline.write_all(b"KILL\n");
        }
        let _ = self.supervisor.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}
