//! The words of events: a reason per outcome, an action per AWS call. Events with the same
//! reason and action fold into one (the recorder counts them), so an action names the call
//! and, where an object has several of a kind, which one.

use std::fmt;

/// Why an event was published (its `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Created,
    Updated,
    Deleted,
    /// Every AWS resource matches the spec.
    Ready,
    /// Deleted with `deletionPolicy: Retain`: the AWS resources stay.
    Retained,
    /// Something changed outside authedapi that it does not correct; a person should.
    TagsDrifted,
    /// Observe-only: the change it would make.
    WouldChange,
    /// Paused: nothing is done until the annotation goes.
    Paused,
    /// A reconcile failed; the error's own reason.
    Failed(&'static str),
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Created => "Created",
            Reason::Updated => "Updated",
            Reason::Deleted => "Deleted",
            Reason::Ready => "Ready",
            Reason::Retained => "Retained",
            Reason::TagsDrifted => "TagsDrifted",
            Reason::WouldChange => "WouldChange",
            Reason::Paused => "Paused",
            Reason::Failed(reason) => reason,
        }
    }
}

/// What a change does to its resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Create,
    Update,
    Delete,
}

impl Verb {
    /// The event reason of a change of this kind.
    pub fn reason(self) -> Reason {
        match self {
            Verb::Create => Reason::Created,
            Verb::Update => Reason::Updated,
            Verb::Delete => Reason::Deleted,
        }
    }
}

pub use crate::operations::Call;

/// An event's action: the call, and which resource when an object has several.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    pub call: Call,
    pub subject: Option<String>,
}

impl Action {
    pub fn of(call: Call) -> Self {
        Self {
            call,
            subject: None,
        }
    }

    pub fn on(call: Call, subject: impl Into<String>) -> Self {
        Self {
            call,
            subject: Some(subject.into()),
        }
    }
}

impl Action {
    /// The same call about `subject`.
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            Some(subject) => write!(f, "{} {subject}", self.call),
            None => write!(f, "{}", self.call),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_name_the_aws_call_as_aws_spells_it() {
        assert_eq!(Action::of(Call::CreateApi).to_string(), "CreateApi");
        assert_eq!(
            Action::on(Call::CreateRoute, "GET /x").to_string(),
            "CreateRoute GET /x"
        );
        assert_eq!(
            Action::of(Call::AddClientIdToOpenIdConnectProvider).to_string(),
            "AddClientIDToOpenIDConnectProvider"
        );
    }
}
