//! One error type for every AWS call, sorted into the kinds the reconciler acts on.

use std::fmt;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;

/// What kind of failure an AWS call had, which decides what the reconciler does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The resource does not exist (counts as deleted on delete).
    NotFound,
    /// The resource exists already, or a conflicting change is in progress.
    Conflict,
    /// AWS asked us to slow down: retry with backoff.
    Throttled,
    /// 5xx, timeouts, connection failures: retry with backoff.
    Transient,
    /// The credentials may not do this: a person has to grant it.
    AccessDenied,
    /// AWS refused the request as invalid or over a quota: a person has to change something.
    Invalid,
    /// The operator's own AWS credentials could not be loaded (STS refused its IRSA token,
    /// no credentials configured): nothing was sent; whoever set the credentials up has to
    /// fix them.
    Credentials,
}

/// A failed AWS call: service, operation, AWS error code and message.
#[derive(Clone, Debug, thiserror::Error)]
pub struct AwsError {
    pub kind: ErrorKind,
    pub service: &'static str,
    pub operation: &'static str,
    pub code: String,
    pub message: String,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.service, self.operation)?;
        if !self.code.is_empty() {
            write!(f, "{}: ", self.code)?;
        }
        f.write_str(&self.message)
    }
}

impl AwsError {
    /// Classify an SDK error from `service`'s `operation`.
    pub fn from_sdk<E>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (kind, code, message) = match &err {
            SdkError::ServiceError(ctx) => {
                let status = ctx.raw().status().as_u16();
                let code = ctx.err().code().unwrap_or_default().to_owned();
                let message = match ctx.err().message() {
                    Some(message) => message.to_owned(),
                    // No AWS error shape: say what came back, briefly.
                    None => {
                        let body = ctx.raw().body().bytes().unwrap_or_default();
                        let body = String::from_utf8_lossy(&body[..body.len().min(200)]);
                        format!("HTTP {status}: {}", body.trim())
                    }
                };
                (kind_of(&code, status), code, message)
            }
            _ if credentials_error(&err).is_some() => {
                let cause = credentials_error(&err).expect("checked");
                let kind = match cause {
                    CredentialsError::ProviderTimedOut(_) => ErrorKind::Transient,
                    _ => ErrorKind::Credentials,
                };
                (
                    kind,
                    String::new(),
                    format!(
                        "the operator's AWS credentials could not be loaded, so nothing was sent: \
                         {}; check how its credentials are given (with IRSA, the role's trust must \
                         name the cluster's IAM OIDC provider, the operator's ServiceAccount as \
                         `sub` and sts.amazonaws.com as `aud`)",
                        describe_credentials_error(cause)
                    ),
                )
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => {
                (ErrorKind::Transient, String::new(), error_chain(&err))
            }
            _ => (ErrorKind::Invalid, String::new(), error_chain(&err)),
        };
        Self {
            kind,
            service,
            operation,
            code,
            message,
        }
    }

    /// A request refused before or after the wire as invalid (bad input, bad answer).
    pub fn invalid(
        service: &'static str,
        operation: &'static str,
        code: &str,
        message: String,
    ) -> Self {
        Self {
            kind: ErrorKind::Invalid,
            service,
            operation,
            code: code.to_owned(),
            message,
        }
    }

    /// True when the resource is simply not there.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// True when retrying later may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Throttled | ErrorKind::Transient | ErrorKind::Conflict
        )
    }
}

/// A `map_err` adapter for an SDK call: classify a failure of `service`'s `operation`.
pub fn sdk_err<E>(
    service: &'static str,
    operation: crate::operations::Call,
) -> impl FnOnce(SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| AwsError::from_sdk(service, operation.name(), e)
}

/// Map an AWS error code (and HTTP status) to a kind. Codes differ per service and
/// protocol ("NoSuchEntity" in IAM, "NotFoundException" in API Gateway, ...).
pub fn kind_of(code: &str, status: u16) -> ErrorKind {
    match code {
        "NotFoundException"
        | "ResourceNotFoundException"
        | "NoSuchEntity"
        | "NoSuchEntityException" => ErrorKind::NotFound,
        "TooManyRequestsException"
        | "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "RequestLimitExceeded"
        | "SlowDown" => ErrorKind::Throttled,
        "ConflictException"
        | "EntityAlreadyExists"
        | "ResourceConflictException"
        | "ConcurrentModification"
        | "ConcurrentModificationException" => ErrorKind::Conflict,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "NotAuthorizedException"
        | "AuthorizationError" => ErrorKind::AccessDenied,
        "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "InternalFailure"
        | "InternalErrorException"
        | "InternalServerError"
        | "ServiceFailure"
        | "ServiceException"
        | "RequestTimeout"
        | "RequestTimeoutException" => ErrorKind::Transient,
        _ if status == 429 => ErrorKind::Throttled,
        _ if status >= 500 => ErrorKind::Transient,
        _ if status == 404 => ErrorKind::NotFound,
        _ if status == 403 => ErrorKind::AccessDenied,
        _ => ErrorKind::Invalid,
    }
}

/// The credentials provider's error behind a request that was never sent, if that is why.
fn credentials_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a CredentialsError> {
    let mut source = Some(err);
    while let Some(cause) = source {
        if let Some(found) = cause.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        source = cause.source();
    }
    None
}

/// What a credentials provider's error says, in AWS's words where STS answered (its code
/// and message), else the whole chain.
fn describe_credentials_error(cause: &CredentialsError) -> String {
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    use aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(cause);
    while let Some(e) = source {
        let answer = if let Some(sts) = e.downcast_ref::<AssumeRoleWithWebIdentityError>() {
            Some(("AssumeRoleWithWebIdentity", sts.code(), sts.message()))
        } else {
            e.downcast_ref::<AssumeRoleError>()
                .map(|sts| ("AssumeRole", sts.code(), sts.message()))
        };
        if let Some((operation, code, message)) = answer {
            return format!(
                "STS refused {operation}: {}: {}",
                code.unwrap_or("(no code)"),
                message.unwrap_or_default()
            );
        }
        source = e.source();
    }
    error_chain(cause)
}

/// An error with its causes, joined by ": " (the last one usually says why).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Turn "not found" into `Ok(None)`; pass every other error on.
pub fn not_found_is_none<T>(e: AwsError) -> AwsResult<Option<T>> {
    if e.is_not_found() { Ok(None) } else { Err(e) }
}

/// Shorthand for results of AWS calls.
pub type AwsResult<T> = Result<T, AwsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(kind_of("NoSuchEntity", 404), ErrorKind::NotFound);
        assert_eq!(kind_of("NotFoundException", 404), ErrorKind::NotFound);
        assert_eq!(
            kind_of("TooManyRequestsException", 429),
            ErrorKind::Throttled
        );
        assert_eq!(kind_of("Throttling", 400), ErrorKind::Throttled);
        assert_eq!(kind_of("AccessDenied", 403), ErrorKind::AccessDenied);
        assert_eq!(kind_of("MalformedPolicyDocument", 400), ErrorKind::Invalid);
        assert_eq!(kind_of("LimitExceeded", 409), ErrorKind::Invalid);
        assert_eq!(kind_of("", 503), ErrorKind::Transient);
        assert_eq!(kind_of("Whatever", 500), ErrorKind::Transient);
        assert_eq!(kind_of("EntityAlreadyExists", 409), ErrorKind::Conflict);
    }

    #[test]
    fn credentials_that_cannot_be_loaded_are_their_own_kind() {
        let refused = CredentialsError::provider_error(
            "AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity",
        );
        let err: SdkError<
            aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError,
            HttpResponse,
        > = SdkError::construction_failure(refused);
        let e = AwsError::from_sdk("sts", "GetCallerIdentity", err);
        assert_eq!(e.kind, ErrorKind::Credentials);
        assert!(!e.is_retryable());
        assert!(
            e.message
                .contains("Not authorized to perform sts:AssumeRoleWithWebIdentity"),
            "{e}"
        );

        let slow = CredentialsError::provider_timed_out(std::time::Duration::from_secs(5));
        let err: SdkError<
            aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError,
            HttpResponse,
        > = SdkError::dispatch_failure(
            aws_smithy_runtime_api::client::result::ConnectorError::other(Box::new(slow), None),
        );
        assert_eq!(
            AwsError::from_sdk("sts", "GetCallerIdentity", err).kind,
            ErrorKind::Transient
        );
    }
}
