//! Child processes that die with their parent.
//!
//! Each server runs under a tiny `sh` supervisor whose stdin is a pipe from us. The
//! supervisor waits for that pipe to close, which happens when we drop the handle or when
//! our process exits for any reason (the kernel closes the pipe, even on SIGKILL), then
//! stops the server and removes its scratch directory. No signal handling, no unsafe code.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

const SUPERVISOR: &str = r#"
cleanup=$1; shift
"$@" &
server=$!
cat >/dev/null
kill -TERM "$server" 2>/dev/null
wait "$server" 2>/dev/null
[ -n "$cleanup" ] && rm -rf "$cleanup"
exit 0
"#;

/// A supervised server process; dropping it stops the server.
pub struct Supervised {
    name: String,
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
            .stdin(Stdio::piped())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {name} ({}): {e}", program.display()))?;
        let lifeline = supervisor.stdin.take();
        Ok(Self {
            name: name.to_owned(),
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

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Stop the server and wait until it is gone.
    pub fn stop(&mut self) {
        self.lifeline.take();
        let _ = self.supervisor.wait();
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}
