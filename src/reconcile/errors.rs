//! Why a reconcile did not finish, with the reason each error is reported under and
//! whether only a person can unblock it.

use kube::runtime::finalizer;

use super::driver::Driver;
use crate::aws::provider::AccountError;
use crate::aws::{AwsError, ErrorKind};
use crate::plan;

/// A resource we would use exists and is not ours; it was left alone.
#[derive(Debug, thiserror::Error)]
#[error("{what} {why}: it was left alone; {remedy}")]
pub struct Conflict {
    /// "IAM role x", "the identity pool y in status".
    pub what: String,
    pub why: String,
    pub remedy: &'static str,
}

impl Conflict {
    /// `what` lacks this object's uid tag.
    pub fn untagged(d: &Driver<'_>, what: String) -> Self {
        Self {
            what,
            why: format!(
                "exists and is not tagged as this object's ({}={})",
                plan::TAG_UID,
                d.uid()
            ),
            remedy: "",
        }
    }

    /// `what` has no owner reference to this object.
    pub fn not_owned(what: String) -> Self {
        Self {
            what,
            why: "exists and is not owned by this AuthedApi".into(),
            remedy: "",
        }
    }

    pub fn remedy(mut self, remedy: &'static str) -> Self {
        self.remedy = remedy;
        self
    }
}

/// Why a reconcile did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A resource with our name exists and is not ours.
    #[error(transparent)]
    NameConflict(#[from] Conflict),
    /// The spec passed admission but cannot be built.
    #[error(transparent)]
    InvalidSpec(#[from] plan::PlanError),
    /// The spec uses what its namespace's tenant (or the operator) does not allow.
    #[error(
        "{}: ask the platform team to allow it, or change the spec (nothing was changed in AWS)",
        .0.join("; ")
    )]
    NotAllowed(Vec<String>),
    /// More than one AuthedApiTenant selects the namespace.
    #[error("{0}")]
    TenantsOverlap(String),
    /// The namespace is mapped to no AWS account, and the operator may not use its own.
    #[error(
        "{0} maps this namespace to no AWS account, and the operator does not use its own \
         (--own-account=deny): ask the platform team for an AuthedApiTenant with spec.aws \
         (nothing was changed in AWS)"
    )]
    NoAccount(String),
    /// The tenant's account cannot be used (its role cannot be assumed).
    #[error(
        "the AWS account of {via} cannot be used: {source}; the platform team must fix the role's trust or the tenant (nothing was changed in AWS)"
    )]
    AccountUnavailable {
        via: String,
        #[source]
        source: AccountError,
    },
    /// The object's resources are in one account and its namespace now maps to another.
    #[error(
        "this object's AWS resources are in account {from}, and {via} now maps its namespace \
         to account {to}: they stay where they are and nothing is changed; map the namespace \
         back to {from}, or delete this object (its resources in {from} are deleted only while \
         the namespace maps there; with deletionPolicy Retain they stay) and create it again"
    )]
    AccountMoved {
        from: String,
        to: String,
        via: String,
    },
    /// spec.adopt names a resource the platform did not hand to this object.
    #[error(
        "{what} cannot be adopted: {why}; mark it, or remove it from spec.adopt to have a new one made"
    )]
    NotAdoptable { what: String, why: String },
    /// The operator has no AWS region to work in.
    #[error("no AWS region: set spec.region or give the operator one (AWS_REGION)")]
    NoRegion,
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
}

impl Error {
    /// The CamelCase reason used in conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Aws(e) => match e.kind {
                ErrorKind::NotFound => "AwsResourceNotFound",
                ErrorKind::Conflict => "AwsConflict",
                ErrorKind::Throttled => "Throttled",
                ErrorKind::Transient => "AwsUnavailable",
                ErrorKind::AccessDenied => "AccessDenied",
                ErrorKind::Invalid => "AwsRejected",
                ErrorKind::Credentials => "CredentialsUnavailable",
            },
            Error::NameConflict(_) => "NameConflict",
            Error::NotAdoptable { .. } => "AdoptionRefused",
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::NotAllowed(_) | Error::TenantsOverlap(_) => "NotAllowed",
            Error::NoRegion => "OperatorMisconfigured",
            Error::NoAccount(_) => "NoAccount",
            Error::AccountUnavailable { source, .. } => match source {
                AccountError::Aws(e) if e.kind == ErrorKind::Credentials => {
                    "CredentialsUnavailable"
                }
                AccountError::Aws(_) => "AwsUnavailable",
                _ => "AccountUnavailable",
            },
            Error::AccountMoved { .. } => "AccountMoved",
            Error::Kube(_) => "KubernetesError",
            Error::Finalizer(_) => "FinalizerError",
        }
    }

    /// Whether this error follows from what the AuthedApiTenants say of the namespace (its
    /// limits, its account, the role to reach it), so a tenants cache that is behind could
    /// have caused it.
    pub fn comes_from_tenants(&self) -> bool {
        matches!(
            self,
            Error::NotAllowed(_)
                | Error::TenantsOverlap(_)
                | Error::NoAccount(_)
                | Error::AccountMoved { .. }
                | Error::AccountUnavailable { .. }
        )
    }

    /// True when retrying alone will not help: a person must act.
    pub fn stalls(&self) -> bool {
        match self {
            Error::Aws(e) => !e.is_retryable(),
            Error::NameConflict(_)
            | Error::NotAdoptable { .. }
            | Error::InvalidSpec(_)
            | Error::NotAllowed(_)
            | Error::TenantsOverlap(_)
            | Error::NoRegion
            | Error::NoAccount(_)
            | Error::AccountMoved { .. } => true,
            Error::AccountUnavailable { source, .. } => match source {
                AccountError::Aws(e) => !e.is_retryable(),
                _ => true,
            },
            Error::Kube(_) | Error::Finalizer(_) => false,
        }
    }
}
