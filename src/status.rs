//! Status and conditions, kstatus style: `Ready` says whether AWS matches the spec of
//! `observedGeneration`; `Reconciling` is present while work is under way; `Stalled` when
//! only a person can unblock it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
/// Present (True) while the object is paused.
pub const PAUSED: &str = "Paused";

/// Where a reconcile ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Every AWS resource matches the spec.
    Ready,
    /// Work under way or being retried; `reason` in CamelCase.
    Progressing { reason: String, message: String },
    /// Cannot progress until someone changes the spec, the account or permissions.
    Stalled { reason: String, message: String },
    /// Not Ready, by choice: nothing is under way and nothing is wrong (observe-only
    /// with changes it will not make).
    Waiting { reason: String, message: String },
}

/// The conditions for `outcome` at `generation`. A condition whose status does not change
/// keeps its lastTransitionTime.
pub fn conditions(
    existing: &[Condition],
    generation: i64,
    outcome: &Outcome,
    now: Timestamp,
) -> Vec<Condition> {
    let make = |type_: &str, status: &str, reason: &str, message: &str| {
        let previous = existing.iter().find(|c| c.type_ == type_);
        let last_transition_time = match previous {
            Some(c) if c.status == status => c.last_transition_time.clone(),
            _ => Time(now),
        };
        Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation: Some(generation),
            last_transition_time,
        }
    };
    match outcome {
        Outcome::Ready => vec![make(
            READY,
            "True",
            "Ready",
            "Every AWS resource matches the spec",
        )],
        Outcome::Progressing { reason, message } => vec![
            make(READY, "False", reason, message),
            make(RECONCILING, "True", reason, message),
        ],
        Outcome::Stalled { reason, message } => vec![
            make(READY, "False", reason, message),
            make(STALLED, "True", reason, message),
        ],
        Outcome::Waiting { reason, message } => vec![make(READY, "False", reason, message)],
    }
}

/// `existing` with a `Paused` condition (True) added; the others stay as they were, for
/// the generation they describe.
pub fn paused(existing: &[Condition], generation: i64, now: Timestamp) -> Vec<Condition> {
    let mut conditions: Vec<Condition> = existing
        .iter()
        .filter(|c| c.type_ != PAUSED)
        .cloned()
        .collect();
    conditions.push(Condition {
        type_: PAUSED.to_owned(),
        status: "True".to_owned(),
        reason: "Paused".to_owned(),
        message: "authedapi.dev/paused is \"true\": no AWS call (and no deletion) until it goes"
            .to_owned(),
        observed_generation: Some(generation),
        last_transition_time: Time(now),
    });
    conditions
}

/// Whether `conditions` say the object is paused.
pub fn is_paused(conditions: &[Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == PAUSED && c.status == "True")
}

/// Whether `conditions` say Ready for `generation`.
pub fn is_ready(conditions: &[Condition], generation: i64) -> bool {
    conditions.iter().any(|c| {
        c.type_ == READY && c.status == "True" && c.observed_generation == Some(generation)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn pausing_adds_a_condition_and_keeps_the_others() {
        let ready = conditions(&[], 3, &Outcome::Ready, at(1));
        let paused = paused(&ready, 4, at(2));
        assert!(is_paused(&paused));
        assert!(is_ready(&paused, 3), "Ready still describes generation 3");
        assert_eq!(paused.len(), 2);
        assert_eq!(
            super::paused(&paused, 4, at(3)).len(),
            2,
            "one Paused condition"
        );
        let resumed = conditions(&paused, 4, &Outcome::Ready, at(4));
        assert!(!is_paused(&resumed), "a full reconcile drops it");
    }

    #[test]
    fn waiting_is_not_ready_and_neither_reconciling_nor_stalled() {
        let waiting = Outcome::Waiting {
            reason: "ObserveOnly".into(),
            message: "m".into(),
        };
        let c = conditions(&[], 1, &waiting, at(1));
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].type_.as_str(), c[0].status.as_str()),
            (READY, "False")
        );
    }

    #[test]
    fn ready_alone_when_done() {
        let c = conditions(&[], 3, &Outcome::Ready, at(10));
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].type_.as_str(), c[0].status.as_str()), (READY, "True"));
        assert_eq!(c[0].observed_generation, Some(3));
        assert!(is_ready(&c, 3));
        assert!(
            !is_ready(&c, 4),
            "ready for an older generation is not ready"
        );
    }

    #[test]
    fn progressing_sets_reconciling_and_not_ready() {
        let outcome = Outcome::Progressing {
            reason: "Throttled".into(),
            message: "apigateway CreateApi: TooManyRequestsException: slow down".into(),
        };
        let c = conditions(&[], 1, &outcome, at(10));
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].status, "False");
        assert_eq!(
            (c[1].type_.as_str(), c[1].status.as_str()),
            (RECONCILING, "True")
        );
        assert_eq!(c[1].reason, "Throttled");
    }

    #[test]
    fn stalled_sets_stalled() {
        let outcome = Outcome::Stalled {
            reason: "NameConflict".into(),
            message: "role x exists and is not ours".into(),
        };
        let c = conditions(&[], 1, &outcome, at(10));
        assert_eq!(
            (c[1].type_.as_str(), c[1].status.as_str()),
            (STALLED, "True")
        );
        assert!(c[0].message.contains("not ours"));
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let first = conditions(&[], 1, &Outcome::Ready, at(10));
        let again = conditions(&first, 2, &Outcome::Ready, at(20));
        assert_eq!(again[0].last_transition_time, Time(at(10)));
        let stalled = Outcome::Stalled {
            reason: "X".into(),
            message: "y".into(),
        };
        let changed = conditions(&again, 3, &stalled, at(30));
        assert_eq!(changed[0].last_transition_time, Time(at(30)));
    }
}
