//! Test hooks: ways to make the operator exit at a chosen point, to prove that a crash
//! there neither leaks nor duplicates anything. Inert unless their environment variable is
//! set; the test suite sets them on operator processes it starts.
//!
//! - `AUTHEDAPI_TEST_CRASH_AFTER=CreateApi`: exit right after a successful call of that AWS
//!   operation, before the operator sees the result; `CreateAuthorizer#2`: after the
//!   second (an operation two kinds make, the second kind's create).
//! - `AUTHEDAPI_TEST_CRASH_BEFORE_STATUS_WRITE=N`: exit instead of making the N-th status
//!   write of the process (1 = the first).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// The exit code of a deliberate crash.
pub const CRASH_EXIT_CODE: i32 = 86;

/// Test hook: exit the process right after a successful call of the operation named in
/// `AUTHEDAPI_TEST_CRASH_AFTER` (e.g. "CreateApi"), to prove that a crash between an AWS
/// create and the status write neither leaks nor duplicates anything. Only installed when
/// that variable is set.
#[derive(Clone, Debug)]
pub struct CrashAfter {
    operation: String,
    /// Crash after this many successful calls of the operation (1: the first).
    occurrence: usize,
    /// Successful calls so far, shared by every client the hook is installed on.
    succeeded: Arc<AtomicUsize>,
}

impl CrashAfter {
    pub const ENV: &'static str = "AUTHEDAPI_TEST_CRASH_AFTER";

    pub fn from_env() -> Option<Self> {
        std::env::var(Self::ENV)
            .ok()
            .filter(|op| !op.is_empty())
            .map(|point| {
                let (operation, occurrence) = match point.split_once('#') {
                    Some((operation, n)) => (operation.to_owned(), n.parse().unwrap_or(1)),
                    None => (point, 1),
                };
                Self {
                    operation,
                    occurrence,
                    succeeded: Arc::default(),
                }
            })
    }
}

impl Intercept for CrashAfter {
    fn name(&self) -> &'static str {
        "CrashAfter"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let succeeded = matches!(context.output_or_error(), Some(Ok(_)));
        let matches = cfg
            .load::<Metadata>()
            .is_some_and(|m| m.name() == self.operation);
        if succeeded
            && matches
            && self.succeeded.fetch_add(1, Ordering::SeqCst) + 1 == self.occurrence
        {
            let point = std::env::var(Self::ENV).unwrap_or_default();
            eprintln!("{}={point}: exiting after the call, as asked", Self::ENV);
            std::process::exit(CRASH_EXIT_CODE);
        }
        Ok(())
    }
}

/// Variable naming the status write to crash before.
pub const CRASH_BEFORE_STATUS_WRITE: &str = "AUTHEDAPI_TEST_CRASH_BEFORE_STATUS_WRITE";

/// Call before every status write: exits when this is the write the variable names.
pub fn before_status_write() {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let Some(target) = std::env::var(CRASH_BEFORE_STATUS_WRITE)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    let n = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    if n == target {
        eprintln!(
            "{CRASH_BEFORE_STATUS_WRITE}={target}: exiting before the status write, as asked"
        );
        std::process::exit(CRASH_EXIT_CODE);
    }
}
