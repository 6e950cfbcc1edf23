//! An API's integrations: one per distinct target the routes use. Inside an API that is
//! ours every integration is ours, so they are kept as a set: the missing are created
//! (before the routes that need them), the unused deleted (after the routes moved away,
//! hence the `prune` pass). A crash after a create leaves an integration that the next
//! observe finds by its target and uses: no marker needed. An integration changed behind
//! our back (a private one's VPC link, URI or TLS name, say) is another target: a new one
//! is made, the routes move to it, and the changed one is pruned.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::apigateway::{Integration, IntegrationTarget};
use crate::reconcile::Error;
use crate::reconcile::driver::{
    Change, Created, Driver, KindInfo, Managed, TagUpkeep, gone_is_done,
};
use crate::reconcile::events::{Action, Call, Verb};

pub const INFO: KindInfo = KindInfo {
    name: "integration",
    unique_names: false,
    pending: None,
    creates: &[Call::CreateIntegration],
    tags: TagUpkeep::None,
};

/// The integrations of the API `api_id`.
pub struct Integrations<'a> {
    pub api_id: &'a str,
    /// The API was created by this reconcile: it has none yet, no need to ask.
    pub new_api: bool,
}

/// The targets the routes use; with `prune`, every other integration goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub targets: BTreeSet<IntegrationTarget>,
    pub prune: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum IntegrationChange {
    Create(IntegrationTarget),
    /// An integration no route uses (or a second one to the same target).
    Delete(String),
}

impl Change for IntegrationChange {
    fn verb(&self) -> Verb {
        match self {
            IntegrationChange::Create(_) => Verb::Create,
            IntegrationChange::Delete(_) => Verb::Delete,
        }
    }

    fn action(&self) -> Action {
        match self {
            IntegrationChange::Create(target) => {
                Action::on(Call::CreateIntegration, describe(target))
            }
            IntegrationChange::Delete(id) => Action::on(Call::DeleteIntegration, id),
        }
    }

    fn describe(&self) -> String {
        match self {
            IntegrationChange::Create(target) => {
                format!("Created an integration to {}", describe(target))
            }
            IntegrationChange::Delete(id) => format!("Deleted unused integration {id}"),
        }
    }
}

/// Target -> the integration routes should use (the first one to it).
pub fn by_target(observed: &[Integration]) -> BTreeMap<IntegrationTarget, String> {
    let mut found = BTreeMap::new();
    for integration in observed {
        if let Some(target) = &integration.target {
            found
                .entry(target.clone())
                .or_insert_with(|| integration.id.clone());
        }
    }
    found
}

pub fn diff(wanted: &Wanted, observed: &[Integration]) -> Vec<IntegrationChange> {
    let used = by_target(observed);
    let mut changes: Vec<IntegrationChange> = wanted
        .targets
        .iter()
        .filter(|t| !used.contains_key(*t))
        .cloned()
        .map(IntegrationChange::Create)
        .collect();
    if wanted.prune {
        changes.extend(
            observed
                .iter()
                .filter(|i| {
                    !i.target
                        .as_ref()
                        .is_some_and(|t| wanted.targets.contains(t) && used[t] == i.id)
                })
                .map(|i| IntegrationChange::Delete(i.id.clone())),
        );
    }
    changes
}

#[async_trait::async_trait]
impl Managed for Integrations<'_> {
    type Desired = Wanted;
    type Observed = Vec<Integration>;
    type Change = IntegrationChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    async fn observe(&self, d: &mut Driver<'_>, _: &Wanted) -> Result<Vec<Integration>, Error> {
        if self.new_api {
            return Ok(Vec::new());
        }
        Ok(d.aws.apigateway.list_integrations(self.api_id).await?)
    }

    fn diff(&self, wanted: &Wanted, observed: &Vec<Integration>) -> Vec<IntegrationChange> {
        diff(wanted, observed)
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        _: &Wanted,
        observed: &mut Vec<Integration>,
        change: &IntegrationChange,
    ) -> Result<Option<Created>, Error> {
        let gw = &d.aws.apigateway;
        match change {
            IntegrationChange::Create(target) => {
                let id = gw.create_integration(self.api_id, target).await?;
                observed.push(Integration {
                    id,
                    target: Some(target.clone()),
                });
            }
            IntegrationChange::Delete(id) => {
                gone_is_done(gw.delete_integration(self.api_id, id).await)?;
                observed.retain(|i| i.id != *id);
            }
        }
        Ok(None)
    }
}

pub fn describe(target: &IntegrationTarget) -> String {
    match target {
        IntegrationTarget::Lambda { function_arn, .. } => format!("Lambda {function_arn}"),
        IntegrationTarget::Http { url, method } => format!("{method} {url}"),
        IntegrationTarget::Private {
            uri, vpc_link_id, ..
        } => format!("{uri} through VPC link {vpc_link_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(url: &str) -> IntegrationTarget {
        IntegrationTarget::Http {
            url: url.into(),
            method: "ANY".into(),
        }
    }

    fn existing(id: &str, target: Option<IntegrationTarget>) -> Integration {
        Integration {
            id: id.into(),
            target,
        }
    }

    fn wanted(urls: &[&str], prune: bool) -> Wanted {
        Wanted {
            targets: urls.iter().map(|u| http(u)).collect(),
            prune,
        }
    }

    #[test]
    fn a_missing_target_is_created() {
        let changes = diff(
            &wanted(&["https://a", "https://b"], false),
            &[existing("1", Some(http("https://a")))],
        );
        assert_eq!(changes, vec![IntegrationChange::Create(http("https://b"))]);
    }

    #[test]
    fn present_targets_need_nothing() {
        let observed = [existing("1", Some(http("https://a")))];
        assert!(diff(&wanted(&["https://a"], true), &observed).is_empty());
    }

    #[test]
    fn unused_integrations_go_only_when_pruning() {
        let observed = [
            existing("1", Some(http("https://a"))),
            existing("2", Some(http("https://old"))),
        ];
        assert!(diff(&wanted(&["https://a"], false), &observed).is_empty());
        assert_eq!(
            diff(&wanted(&["https://a"], true), &observed),
            vec![IntegrationChange::Delete("2".into())]
        );
    }

    #[test]
    fn a_second_integration_to_one_target_and_one_of_unknown_shape_are_pruned() {
        let observed = [
            existing("1", Some(http("https://a"))),
            existing("2", Some(http("https://a"))),
            existing("3", None),
        ];
        assert_eq!(
            diff(&wanted(&["https://a"], true), &observed),
            vec![
                IntegrationChange::Delete("2".into()),
                IntegrationChange::Delete("3".into())
            ]
        );
        assert_eq!(by_target(&observed)[&http("https://a")], "1");
    }
}
