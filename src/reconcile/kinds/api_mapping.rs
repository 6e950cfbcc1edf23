//! This object's API mapping on its custom domain: its API's `$default` stage at the
//! spec's base path. A mapping is this object's when it maps this object's API (which is
//! tagged as ours); any other is left alone, and one holding our base path is a
//! `NameConflict` (two AuthedApis on one domain need different base paths).

use crate::aws::apigateway::DEFAULT_STAGE;
use crate::aws::domains::ApiMapping;
use crate::reconcile::driver::{
    Change, Created, Driver, KindInfo, Managed, TagUpkeep, gone_is_done,
};
use crate::reconcile::events::{Action, Call, Verb};
use crate::reconcile::{Conflict, Error};

pub const INFO: KindInfo = KindInfo {
    name: "API mapping",
    unique_names: true,
    pending: None,
    creates: &[Call::CreateApiMapping],
    // Mappings carry no tags: the API they map says whose they are.
    tags: TagUpkeep::None,
};

/// The mappings of `api_id` (None: the object has no API) on the domain `domain`.
pub struct ApiMappingKind<'a> {
    pub domain: &'a str,
    pub api_id: Option<&'a str>,
}

/// The base path wanted ("" for the root), or None for no mapping.
pub type Wanted = Option<String>;

#[derive(Clone, Debug, PartialEq)]
pub enum MappingChange {
    Create { key: String },
    Delete { id: String, key: String },
}

impl Change for MappingChange {
    fn verb(&self) -> Verb {
        match self {
            MappingChange::Create { .. } => Verb::Create,
            MappingChange::Delete { .. } => Verb::Delete,
        }
    }

    fn action(&self) -> Action {
        match self {
            MappingChange::Create { .. } => Action::of(Call::CreateApiMapping),
            MappingChange::Delete { id, .. } => Action::on(Call::DeleteApiMapping, id),
        }
    }

    fn describe(&self) -> String {
        match self {
            MappingChange::Create { key } => format!("Mapped the API at /{key}"),
            MappingChange::Delete { key, .. } => format!("Removed the API's mapping at /{key}"),
        }
    }
}

/// The pure part: `ours` are the mappings of our API on the domain. The new mapping is
/// made before a stale one goes, so a base path change never leaves the API unreachable.
pub fn diff(wanted: Option<&str>, ours: &[ApiMapping]) -> Vec<MappingChange> {
    let mut changes = Vec::new();
    if let Some(key) = wanted
        && !ours
            .iter()
            .any(|m| m.key == key && m.stage == DEFAULT_STAGE)
    {
        changes.push(MappingChange::Create {
            key: key.to_owned(),
        });
    }
    changes.extend(
        ours.iter()
            .filter(|m| Some(m.key.as_str()) != wanted || m.stage != DEFAULT_STAGE)
            .map(|m| MappingChange::Delete {
                id: m.id.clone(),
                key: m.key.clone(),
            }),
    );
    changes
}

/// A mapping not of `api_id` that holds `key`, if any.
pub fn taken<'m>(mappings: &'m [ApiMapping], api_id: &str, key: &str) -> Option<&'m ApiMapping> {
    mappings.iter().find(|m| m.key == key && m.api_id != api_id)
}

#[async_trait::async_trait]
impl Managed for ApiMappingKind<'_> {
    type Desired = Wanted;
    /// Our API's mappings on the domain.
    type Observed = Vec<ApiMapping>;
    type Change = MappingChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    async fn observe(&self, d: &mut Driver<'_>, wanted: &Wanted) -> Result<Vec<ApiMapping>, Error> {
        let Some(api_id) = self.api_id else {
            return Ok(Vec::new());
        };
        let all = match d.aws.domains.list_api_mappings(self.domain).await {
            Ok(all) => all,
            // No domain (yet, in observe-only; or deleted): no mapping.
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        if let Some(key) = wanted
            && let Some(theirs) = taken(&all, api_id, key)
        {
            return Err(Conflict {
                what: format!("the base path /{key} of the custom domain {}", self.domain),
                why: format!("is mapped to another API ({})", theirs.api_id),
                remedy: "give this AuthedApi another spec.domain.basePath, or remove the \
                         other mapping",
            }
            .into());
        }
        Ok(all.into_iter().filter(|m| m.api_id == api_id).collect())
    }

    fn diff(&self, wanted: &Wanted, ours: &Vec<ApiMapping>) -> Vec<MappingChange> {
        diff(wanted.as_deref(), ours)
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        _: &Wanted,
        ours: &mut Vec<ApiMapping>,
        change: &MappingChange,
    ) -> Result<Option<Created>, Error> {
        let domains = &d.aws.domains;
        match change {
            MappingChange::Create { key } => {
                // The diff only creates when there is an API to map.
                let Some(api_id) = self.api_id else {
                    return Ok(None);
                };
                let mapping = domains
                    .create_api_mapping(self.domain, api_id, key, DEFAULT_STAGE)
                    .await?;
                ours.push(mapping);
            }
            MappingChange::Delete { id, .. } => {
                gone_is_done(domains.delete_api_mapping(self.domain, id).await)?;
                ours.retain(|m| m.id != *id);
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(id: &str, key: &str, api: &str) -> ApiMapping {
        ApiMapping {
            id: id.into(),
            key: key.into(),
            api_id: api.into(),
            stage: DEFAULT_STAGE.into(),
        }
    }

    #[test]
    fn a_missing_mapping_is_created_and_one_in_place_needs_nothing() {
        assert_eq!(
            diff(Some("dev"), &[]),
            vec![MappingChange::Create { key: "dev".into() }]
        );
        assert!(diff(Some("dev"), &[mapping("m1", "dev", "a")]).is_empty());
        assert!(diff(Some(""), &[mapping("m1", "", "a")]).is_empty());
    }

    #[test]
    fn a_new_base_path_is_mapped_before_the_old_goes() {
        assert_eq!(
            diff(Some("v2"), &[mapping("m1", "dev", "a")]),
            vec![
                MappingChange::Create { key: "v2".into() },
                MappingChange::Delete {
                    id: "m1".into(),
                    key: "dev".into()
                }
            ]
        );
    }

    #[test]
    fn a_mapping_of_another_stage_is_replaced() {
        let mut other_stage = mapping("m1", "dev", "a");
        other_stage.stage = "prod".into();
        assert_eq!(diff(Some("dev"), &[other_stage]).len(), 2);
    }

    #[test]
    fn nothing_wanted_removes_every_mapping_of_ours() {
        let changes = diff(None, &[mapping("m1", "dev", "a"), mapping("m2", "x", "a")]);
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().all(|c| c.verb() == Verb::Delete));
    }

    #[test]
    fn a_base_path_is_taken_only_by_another_apis_mapping() {
        let all = [mapping("m1", "dev", "a"), mapping("m2", "prod", "b")];
        assert_eq!(taken(&all, "a", "prod").map(|m| m.id.as_str()), Some("m2"));
        assert_eq!(taken(&all, "a", "dev"), None, "our own");
        assert_eq!(taken(&all, "a", "qa"), None);
    }
}
