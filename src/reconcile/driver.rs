//! The reconcile driver: every AWS resource kind is a [`Managed`] module (observe, a pure
//! diff, and the call that removes each difference); the driver owns what they share.
//!
//! * **Shape.** [`Driver::ensure`] observes (never writing to AWS), diffs, then applies
//!   each change and publishes its event (the reason from the change's verb, the action
//!   from its call). Deletion is the same with nothing desired.
//! * **Crash safety.** A kind whose names AWS does not keep unique has a pending marker:
//!   written to status before the create is sent, cleared when the id is saved right after
//!   it. Both are the driver's: a create returns what it made ([`Created`]) and the driver
//!   records it where the kind says ([`Managed::record`]), as crossplane's managed
//!   reconciler records an external name. Observing such a kind with its marker set looks
//!   the resource up by name and uid tag ([`Managed::adopted`]), so a crash in between
//!   never leaks or duplicates it. Status writes are counted
//!   ([`Driver::status_writes`], and a metric) so the crash tests stop before each one.
//! * **Races.** A create that AWS answers "already exists" (another reconcile, or our own
//!   before a crash) is observed again once, and the diff recomputed.
//! * **Ownership.** A resource found by id or name that does not carry this object's uid
//!   tag is not ours: `NameConflict` when we would need it, left alone always.
//! * **Tags.** Every resource carries the plan's tags: the organisation's (the operator's
//!   `--resource-tags`, then `spec.tags` over them) and the operator's own over both.
//!   Kinds that can correct their tags put the correction in their diff, and remove the
//!   organisation's tags that left the spec ([`Driver::stale_tags`]); kinds that cannot
//!   (API Gateway: see [`TagUpkeep::Reported`]) have drift reported as a Warning for a
//!   person to fix: a tag lost or changed behind our back, a `spec.tags` change, and a tag
//!   the spec no longer has.
//! * **Observe-only.** In [`Mode::ObserveOnly`] nothing is applied: each change is kept
//!   in [`Driver::planned`] for status and events instead.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::runtime::events::EventType;

use super::events::{Action, Call, Reason, Verb};
use super::{Context, Error};
use crate::api::{AuthedApi, AuthedApiStatus};
use crate::aws::{AwsClients, ErrorKind};
use crate::plan::{self, Plan};

/// Whether a reconcile may change AWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Act,
    /// Read and compare only; report what would change.
    ObserveOnly,
}

/// How a kind keeps the tags the plan gives every resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagUpkeep {
    /// Its diff corrects them (IAM roles, identity pools).
    Corrected,
    /// Set at creation; drift is reported, not corrected. API Gateway's tagging calls
    /// have no resource-tag condition key: an operator allowed to retag its own APIs
    /// could retag (and so take) anyone's. So the organisation's tags an API and its
    /// stage were created with stay as they were: a `spec.tags` (or `--resource-tags`)
    /// change reaches them only through the command the TagsDrifted warning names.
    Reported,
    /// The kind has no tags of ours, or lives inside a resource that has them (an API's
    /// routes, say), or is shared (the OIDC provider, whose tags are records).
    None,
}

/// What the driver and the crash tests know of a kind.
#[derive(Debug)]
pub struct KindInfo {
    /// The kind's name, as in messages.
    pub name: &'static str,
    /// Whether AWS keeps its names unique (then a same-named one not ours is a conflict;
    /// else the id in status, and a pending marker, find ours).
    pub unique_names: bool,
    /// The marker written to `status.pendingCreates` before a create, for top-level kinds
    /// whose names are not unique (its string is what objects already store: keep it).
    pub pending: Option<&'static str>,
    /// The AWS operations that create it (a crash right after each is tested).
    pub creates: &'static [Call],
    pub tags: TagUpkeep,
}

/// What a create made: the driver records it in status (where [`Managed::record`] says),
/// clears the kind's pending marker and saves, before the next change is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// Its id in AWS.
    pub id: String,
    /// Where it answers, for kinds that have an address (an API's endpoint).
    pub endpoint: Option<String>,
}

/// One difference between the plan and AWS, and what removes it.
pub trait Change: Send + Sync + std::fmt::Debug {
    fn verb(&self) -> Verb;
    fn action(&self) -> Action;
    /// The event's note: what was (or would be) done.
    fn describe(&self) -> String;
}

/// A resource whose tags the driver checks (kinds with [`TagUpkeep::Reported`]).
pub struct Tagged<'o> {
    /// What it is, for the message ("HTTP API a1b2").
    pub what: String,
    /// Its ARN, for the command that restores the tags.
    pub arn: String,
    pub tags: &'o BTreeMap<String, String>,
}

/// One kind of resource: observe it, tell what differs, remove each difference.
#[async_trait::async_trait]
pub trait Managed: Send + Sync {
    /// What the plan wants (an `Option`, or an empty set, where it may want nothing).
    type Desired: Send + Sync;
    /// What AWS has now.
    type Observed: Send + Sync;
    type Change: Change;

    fn info(&self) -> &'static KindInfo;

    /// Read AWS (and status). Never writes to AWS; may save status (adopting a resource
    /// whose create was pending).
    async fn observe(
        &self,
        d: &mut Driver<'_>,
        desired: &Self::Desired,
    ) -> Result<Self::Observed, Error>;

    /// What differs, in the order to apply it. Pure.
    fn diff(&self, desired: &Self::Desired, observed: &Self::Observed) -> Vec<Self::Change>;

    /// Make one change; `observed` follows it (a created resource's id, say). A create
    /// of a kind with a pending marker returns what it made, for the driver to record.
    async fn apply(
        &self,
        d: &mut Driver<'_>,
        desired: &Self::Desired,
        observed: &mut Self::Observed,
        change: &Self::Change,
    ) -> Result<Option<Created>, Error>;

    /// Where in status what a create made is kept (kinds with a pending marker: the id
    /// that finds ours among same-named ones).
    fn record(&self, _status: &mut AuthedApiStatus, _created: &Created) {}

    /// With the kind's pending marker set: the resource of ours `observe` found by name
    /// (a create whose id never reached status), for the driver to record as created.
    fn adopted(
        &self,
        _d: &Driver<'_>,
        _desired: &Self::Desired,
        _observed: &Self::Observed,
    ) -> Option<Created> {
        None
    }

    /// The resources whose tags the driver checks ([`TagUpkeep::Reported`] kinds).
    fn reported_tags<'o>(&self, _d: &Driver<'_>, _observed: &'o Self::Observed) -> Vec<Tagged<'o>> {
        Vec::new()
    }
}

/// How applying a diff ended.
enum Applied {
    Done,
    /// A create found the resource already there: observe again.
    Raced,
}

/// One reconcile of one object.
pub struct Driver<'a> {
    pub aws: &'a AwsClients,
    pub plan: &'a Plan,
    pub obj: &'a AuthedApi,
    pub ctx: &'a Context,
    pub status: AuthedApiStatus,
    pub mode: Mode,
    /// Observe-only: each change that would be made, "Action: note".
    pub planned: Vec<String>,
    /// Status writes this reconcile made.
    pub status_writes: u32,
    /// What this reconcile created: the kind, and which one (see [`Driver::created`]).
    created: Vec<(&'static str, Option<String>)>,
    /// The kinds ensured, in the order first ensured (see [`super::kinds::follows`]).
    visited: Vec<&'static str>,
}

impl<'a> Driver<'a> {
    pub fn new(
        aws: &'a AwsClients,
        plan: &'a Plan,
        obj: &'a AuthedApi,
        ctx: &'a Context,
        status: AuthedApiStatus,
        mode: Mode,
    ) -> Self {
        Self {
            aws,
            plan,
            obj,
            ctx,
            status,
            mode,
            planned: Vec::new(),
            status_writes: 0,
            created: Vec::new(),
            visited: Vec::new(),
        }
    }

    /// The kinds this driver ensured, in the order first ensured.
    pub fn visited(&self) -> &[&'static str] {
        &self.visited
    }

    /// Observe `kind`, diff it with `desired` and apply the changes (or, observe-only,
    /// record them); returns what AWS has afterwards.
    pub async fn ensure<K: Managed>(
        &mut self,
        kind: &K,
        desired: &K::Desired,
    ) -> Result<K::Observed, Error> {
        let name = kind.info().name;
        if !self.visited.contains(&name) {
            self.visited.push(name);
        }
        let mut may_race = true;
        loop {
            let mut observed = kind.observe(self, desired).await?;
            if self.is_pending(kind.info())
                && let Some(made) = kind.adopted(self, desired, &observed)
            {
                self.record_created(kind, &made).await?;
            }
            if kind.info().tags == TagUpkeep::Reported {
                self.report_tag_drift(kind.reported_tags(self, &observed))
                    .await;
            }
            match self
                .apply_changes(kind, desired, &mut observed, may_race)
                .await?
            {
                Applied::Done => return Ok(observed),
                Applied::Raced => may_race = false,
            }
        }
    }

    /// Diff `kind` against what was observed before (a second pass over the same
    /// observation, e.g. deleting what the routes no longer use) and apply.
    pub async fn act<K: Managed>(
        &mut self,
        kind: &K,
        desired: &K::Desired,
        mut observed: K::Observed,
    ) -> Result<K::Observed, Error> {
        self.apply_changes(kind, desired, &mut observed, false)
            .await?;
        Ok(observed)
    }

    async fn apply_changes<K: Managed>(
        &mut self,
        kind: &K,
        desired: &K::Desired,
        observed: &mut K::Observed,
        may_race: bool,
    ) -> Result<Applied, Error> {
        for change in kind.diff(desired, observed) {
            if self.mode == Mode::ObserveOnly {
                self.planned
                    .push(format!("{}: {}", change.action(), change.describe()));
                continue;
            }
            if change.verb() == Verb::Create
                && let Some(pending) = kind.info().pending
            {
                self.mark_pending(pending).await?;
            }
            match kind.apply(self, desired, observed, &change).await {
                Ok(Some(made)) => self.record_created(kind, &made).await?,
                Ok(None) => {}
                Err(Error::Aws(e))
                    if e.kind == ErrorKind::Conflict
                        && change.verb() == Verb::Create
                        && may_race =>
                {
                    tracing::debug!("{} raced: {e}; observing again", change.action());
                    return Ok(Applied::Raced);
                }
                Err(e) => return Err(e),
            }
            if change.verb() == Verb::Create {
                self.created
                    .push((kind.info().name, change.action().subject));
            }
            self.event(change.verb().reason(), change.action(), change.describe())
                .await;
        }
        Ok(Applied::Done)
    }

    /// Record what a create of `kind` made (or what observe adopted) and clear its
    /// pending marker, saving status if that changed it: before anything refers to it.
    async fn record_created<K: Managed>(&mut self, kind: &K, made: &Created) -> Result<(), Error> {
        let before = self.status.clone();
        kind.record(&mut self.status, made);
        if let Some(marker) = kind.info().pending {
            self.clear_pending(marker);
        }
        if self.status != before {
            self.save().await?;
        }
        Ok(())
    }

    /// Whether this reconcile created a resource of `kind`: what lives inside one made a
    /// moment ago is known to be empty, so its children need no read.
    pub fn created(&self, kind: &KindInfo) -> bool {
        self.created.iter().any(|(name, _)| *name == kind.name)
    }

    /// Whether this reconcile created the resource of `kind` its events name `subject`.
    pub fn created_named(&self, kind: &KindInfo, subject: &str) -> bool {
        self.created
            .iter()
            .any(|(name, s)| *name == kind.name && s.as_deref() == Some(subject))
    }

    /// Write the status as it stands now.
    pub async fn save(&mut self) -> Result<(), Error> {
        self.status_writes += 1;
        self.ctx.metrics.status_written();
        let namespace = self.obj.namespace().unwrap_or_default();
        self.ctx
            .cluster
            .save_status(&namespace, &self.obj.name_any(), &self.status)
            .await?;
        Ok(())
    }

    /// Record something in status before the AWS call it guards (the functions that will
    /// hold our permission, the roles of access rules), so a crash after that call leaves
    /// nothing we would not find. Observe-only makes no such call, and records nothing.
    pub async fn record(&mut self, change: impl FnOnce(&mut AuthedApiStatus)) -> Result<(), Error> {
        if self.mode == Mode::ObserveOnly {
            return Ok(());
        }
        let before = self.status.clone();
        change(&mut self.status);
        if self.status != before {
            self.save().await?;
        }
        Ok(())
    }

    /// Record that a create with the pending marker `marker` is about to be sent.
    async fn mark_pending(&mut self, marker: &str) -> Result<(), Error> {
        if !self.marked(marker) {
            self.status.pending_creates.push(marker.to_owned());
            self.save().await?;
        }
        Ok(())
    }

    /// Whether a create of `kind` may have happened without its id reaching status.
    pub fn is_pending(&self, kind: &KindInfo) -> bool {
        kind.pending.is_some_and(|marker| self.marked(marker))
    }

    fn marked(&self, marker: &str) -> bool {
        self.status.pending_creates.iter().any(|k| k == marker)
    }

    /// The create with the marker `marker` is recorded (its id is in status); saved with
    /// the next save.
    fn clear_pending(&mut self, marker: &str) {
        self.status.pending_creates.retain(|k| k != marker);
    }

    /// Announce a change (Normal event).
    pub async fn event(&self, reason: Reason, action: Action, note: String) {
        self.ctx
            .cluster
            .publish(self.obj, EventType::Normal, reason, &action, note)
            .await;
    }

    /// Report something a person should fix (Warning event).
    pub async fn warn(&self, reason: Reason, action: Action, note: String) {
        self.ctx
            .cluster
            .publish(self.obj, EventType::Warning, reason, &action, note)
            .await;
    }

    pub fn uid(&self) -> &str {
        self.obj.metadata.uid.as_deref().unwrap_or_default()
    }

    /// Whether `tags` mark a resource as this object's: its uid tag, or the platform's
    /// mark that hands it to this object ([`super::adoption`]).
    pub fn is_ours(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(plan::TAG_UID).map(String::as_str) == Some(self.uid())
            || super::adoption::marked_for(tags, &self.plan.tags)
    }

    /// The resource `what` (tagged `tags`) that `spec.adopt` names, handed to this object
    /// if the platform marked it so; refused otherwise, before anything is changed.
    pub fn adopt(&self, what: String, tags: &BTreeMap<String, String>) -> Result<(), Error> {
        match super::adoption::refusal(tags, &self.plan.tags) {
            None => Ok(()),
            Some(why) => Err(Error::NotAdoptable { what, why }),
        }
    }

    /// Keys of the organisation's tags this object put on its resources (status.tagKeys)
    /// that the plan no longer has: removed where a kind can untag, reported where not.
    /// Never one of the operator's own.
    pub fn stale_tags(&self) -> Vec<String> {
        self.status
            .tag_keys
            .iter()
            .filter(|k| !self.plan.tag_keys.contains(*k) && !plan::reserved_tag_key(k))
            .cloned()
            .collect()
    }

    /// Warn about each resource lacking tags the plan gives it, or carrying the
    /// organisation's tags the plan no longer has.
    async fn report_tag_drift(&self, resources: Vec<Tagged<'_>>) {
        let stale = self.stale_tags();
        for resource in resources {
            let missing = missing_tags(&self.plan.tags, resource.tags);
            if !missing.is_empty() {
                let pairs: Vec<String> = missing.iter().map(|(k, v)| format!("{k}={v}")).collect();
                self.warn(
                    Reason::TagsDrifted,
                    Action::of(Call::TagResource),
                    format!(
                        "The {} lacks the tags {}: authedapi sets API Gateway tags only when \
                         it creates a resource. Set them: aws apigatewayv2 tag-resource \
                         --resource-arn {} --tags ...",
                        resource.what,
                        pairs.join(", "),
                        resource.arn
                    ),
                )
                .await;
            }
            let left: Vec<&str> = stale
                .iter()
                .filter(|k| resource.tags.contains_key(*k))
                .map(String::as_str)
                .collect();
            if !left.is_empty() {
                self.warn(
                    Reason::TagsDrifted,
                    Action::of(Call::UntagResource),
                    format!(
                        "The {} carries the tags {}, which spec.tags and --resource-tags no \
                         longer have: authedapi sets API Gateway tags only when it creates a \
                         resource. Remove them: aws apigatewayv2 untag-resource \
                         --resource-arn {} --tag-keys {}",
                        resource.what,
                        left.join(", "),
                        resource.arn,
                        left.join(" ")
                    ),
                )
                .await;
            }
        }
    }
}

/// The tags of `wanted` that `actual` lacks or holds with another value.
pub fn missing_tags(
    wanted: &BTreeMap<String, String>,
    actual: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    wanted
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A delete that finds the resource already gone has done its job.
pub fn gone_is_done(result: crate::aws::AwsResult<()>) -> Result<(), Error> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn missing_tags_are_the_absent_and_the_changed() {
        let wanted = tags(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let actual = tags(&[("a", "1"), ("b", "other"), ("extra", "x")]);
        assert_eq!(
            missing_tags(&wanted, &actual),
            tags(&[("b", "2"), ("c", "3")])
        );
        assert!(missing_tags(&wanted, &wanted).is_empty());
    }
}
