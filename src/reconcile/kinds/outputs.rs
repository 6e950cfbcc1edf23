//! The outputs ConfigMap: the API's coordinates for other workloads, owned by the
//! AuthedApi (so Kubernetes' garbage collector removes it with the object; the operator
//! also deletes it on cleanup and when the spec names another one or none). A ConfigMap
//! of that name that this object does not own is someone else's: `NameConflict`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;

use crate::reconcile::driver::{Change, Created, Driver, KindInfo, Managed, TagUpkeep};
use crate::reconcile::events::{Action, Call, Verb};
use crate::reconcile::{Conflict, Error};

pub const INFO: KindInfo = KindInfo {
    name: "outputs ConfigMap",
    unique_names: true,
    pending: None,
    // A Kubernetes write, not an AWS create: nothing to crash after.
    creates: &[],
    tags: TagUpkeep::None,
};

pub struct Outputs;

/// Every key an outputs ConfigMap may hold. The chart's admission policy admits no other
/// (so the operator's token cannot put, say, NODE_OPTIONS where a workload's envFrom reads
/// it); the tests keep the two, and what reconciles write, in step.
pub const OUTPUT_KEYS: &[&str] = &[
    "endpoint",
    "identityPoolId",
    "region",
    "auth0Domain",
    "auth0ClientId",
    "issuer",
    "clientId",
    "domainName",
    "domainUrl",
    "domainTarget",
    "domainHostedZoneId",
];

/// The ConfigMap to write, if the spec asks for one.
pub type Wanted = Option<ConfigMap>;

/// A ConfigMap we may have written: the wanted one, the one status recorded, the spec's.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub name: String,
    pub config_map: Option<ConfigMap>,
    /// Owned by this object.
    pub ours: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OutputsChange {
    Write { name: String, exists: bool },
    Delete { name: String },
}

impl Change for OutputsChange {
    fn verb(&self) -> Verb {
        match self {
            OutputsChange::Write { exists: false, .. } => Verb::Create,
            OutputsChange::Write { exists: true, .. } => Verb::Update,
            OutputsChange::Delete { .. } => Verb::Delete,
        }
    }

    fn action(&self) -> Action {
        match self {
            OutputsChange::Write { .. } => Action::of(Call::WriteOutputs),
            OutputsChange::Delete { name } => Action::on(Call::DeleteOutputs, name),
        }
    }

    fn describe(&self) -> String {
        match self {
            OutputsChange::Write { name, exists } => format!(
                "{} ConfigMap {name} with the API's endpoint and identity pool",
                if *exists { "Updated" } else { "Created" }
            ),
            OutputsChange::Delete { name } => format!("Deleted ConfigMap {name}"),
        }
    }
}

pub fn diff(wanted: Option<&ConfigMap>, found: &[Found]) -> Vec<OutputsChange> {
    let wanted_name = wanted.and_then(|c| c.metadata.name.clone());
    let mut changes: Vec<OutputsChange> = found
        .iter()
        .filter(|f| Some(&f.name) != wanted_name.as_ref() && f.ours && f.config_map.is_some())
        .map(|f| OutputsChange::Delete {
            name: f.name.clone(),
        })
        .collect();
    if let (Some(wanted), Some(name)) = (wanted, wanted_name) {
        let current = found
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.config_map.as_ref());
        if current.and_then(|c| c.data.as_ref()) != wanted.data.as_ref() {
            changes.push(OutputsChange::Write {
                name,
                exists: current.is_some(),
            });
        }
    }
    changes
}

#[async_trait::async_trait]
impl Managed for Outputs {
    type Desired = Wanted;
    type Observed = Vec<Found>;
    type Change = OutputsChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    async fn observe(&self, d: &mut Driver<'_>, wanted: &Wanted) -> Result<Vec<Found>, Error> {
        let namespace = d.obj.namespace().unwrap_or_default();
        let wanted_name = wanted.as_ref().and_then(|c| c.metadata.name.clone());
        let mut names: Vec<String> = wanted_name.iter().cloned().collect();
        names.extend(d.status.outputs_config_map.clone());
        names.extend(
            d.obj
                .spec
                .outputs
                .as_ref()
                .map(|o| o.config_map_name.clone()),
        );
        names.dedup();
        let mut found = Vec::new();
        for name in names {
            if found.iter().any(|f: &Found| f.name == name) {
                continue;
            }
            let config_map = d.ctx.cluster.config_map(&namespace, &name).await?;
            let ours = config_map.as_ref().is_some_and(|c| {
                c.owner_references()
                    .iter()
                    .any(|r| Some(&r.uid) == d.obj.metadata.uid.as_ref())
            });
            if config_map.is_some() && !ours && Some(&name) == wanted_name.as_ref() {
                return Err(Conflict::not_owned(format!("ConfigMap {name}"))
                    .remedy("choose another spec.outputs.configMapName")
                    .into());
            }
            found.push(Found {
                name,
                config_map,
                ours,
            });
        }
        Ok(found)
    }

    fn diff(&self, wanted: &Wanted, found: &Vec<Found>) -> Vec<OutputsChange> {
        diff(wanted.as_ref(), found)
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        wanted: &Wanted,
        found: &mut Vec<Found>,
        change: &OutputsChange,
    ) -> Result<Option<Created>, Error> {
        let namespace = d.obj.namespace().unwrap_or_default();
        match (change, wanted) {
            (OutputsChange::Write { .. }, Some(config_map)) => {
                d.ctx
                    .cluster
                    .apply_config_map(&namespace, config_map)
                    .await?;
            }
            (OutputsChange::Delete { name }, _) => {
                d.ctx.cluster.delete_config_map(&namespace, name).await?;
                found.retain(|f| f.name != *name);
            }
            (OutputsChange::Write { .. }, None) => {}
        }
        Ok(None)
    }
}

/// The ConfigMap of `data` for `obj`, owned by it.
pub fn config_map(
    obj: &crate::api::AuthedApi,
    name: &str,
    data: BTreeMap<String, String>,
) -> ConfigMap {
    use kube::Resource;
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: obj.namespace(),
            owner_references: obj.controller_owner_ref(&()).map(|r| vec![r]),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                "authedapi".to_owned(),
            )])),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charts_admission_policy_admits_exactly_the_output_keys() {
        let helpers = include_str!("../../../charts/authedapi/templates/_helpers.tpl");
        let listed = helpers
            .split("define \"authedapi.outputKeys\"")
            .nth(1)
            .and_then(|rest| rest.lines().nth(1))
            .expect("the chart defines authedapi.outputKeys");
        let keys: Vec<String> = serde_json::from_str(listed).expect("a JSON list of strings");
        assert_eq!(keys, OUTPUT_KEYS);
    }

    fn cm(name: &str, endpoint: &str) -> ConfigMap {
        ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([("endpoint".into(), endpoint.into())])),
            ..Default::default()
        }
    }

    fn found(name: &str, config_map: Option<ConfigMap>, ours: bool) -> Found {
        Found {
            name: name.into(),
            config_map,
            ours,
        }
    }

    #[test]
    fn a_missing_config_map_is_created_and_a_stale_one_updated() {
        assert_eq!(
            diff(Some(&cm("out", "e")), &[found("out", None, false)]),
            vec![OutputsChange::Write {
                name: "out".into(),
                exists: false
            }]
        );
        assert_eq!(
            diff(
                Some(&cm("out", "e")),
                &[found("out", Some(cm("out", "old")), true)]
            ),
            vec![OutputsChange::Write {
                name: "out".into(),
                exists: true
            }]
        );
    }

    #[test]
    fn a_config_map_as_planned_needs_nothing() {
        assert!(
            diff(
                Some(&cm("out", "e")),
                &[found("out", Some(cm("out", "e")), true)]
            )
            .is_empty()
        );
    }

    #[test]
    fn a_renamed_or_dropped_output_deletes_the_old_one_if_ours() {
        let old = found("old", Some(cm("old", "e")), true);
        assert_eq!(
            diff(
                Some(&cm("out", "e")),
                &[found("out", Some(cm("out", "e")), true), old.clone()]
            ),
            vec![OutputsChange::Delete { name: "old".into() }]
        );
        assert_eq!(
            diff(None, &[old]),
            vec![OutputsChange::Delete { name: "old".into() }]
        );
        let theirs = found("old", Some(cm("old", "e")), false);
        assert!(diff(None, &[theirs]).is_empty());
    }
}
