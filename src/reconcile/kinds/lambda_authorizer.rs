//! The API's Lambda REQUEST authorizers (spec.authorizers): each found by its planned name,
//! its function, identity sources, cache and response format kept as planned (changed out
//! of band, updated in place). REQUEST authorizers the plan no longer has are deleted in
//! the `prune` pass, after the routes; JWT authorizers are the JWT kind's, never touched
//! here.

use std::collections::BTreeMap;

use crate::aws::apigateway::{Authorizer, RequestAuthorizer};
use crate::plan::LambdaAuthorizerPlan;
use crate::reconcile::Error;
use crate::reconcile::driver::{
    Change, Created, Driver, KindInfo, Managed, TagUpkeep, gone_is_done,
};
use crate::reconcile::events::{Action, Call, Verb};

pub const INFO: KindInfo = KindInfo {
    name: "Lambda authorizer",
    unique_names: true,
    pending: None,
    creates: &[Call::CreateAuthorizer],
    tags: TagUpkeep::None,
};

/// The REQUEST authorizers of the API `api_id`.
pub struct LambdaAuthorizers<'a> {
    pub api_id: &'a str,
    /// Every authorizer of the API, read once for both authorizer kinds
    /// ([`super::authorizer::list`]).
    pub listed: &'a [Authorizer],
}

#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub authorizers: Vec<LambdaAuthorizerPlan>,
    pub prune: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LambdaAuthorizerChange {
    Create { name: String },
    Update { id: String, name: String },
    Delete { id: String, name: String },
}

impl Change for LambdaAuthorizerChange {
    fn verb(&self) -> Verb {
        match self {
            LambdaAuthorizerChange::Create { .. } => Verb::Create,
            LambdaAuthorizerChange::Update { .. } => Verb::Update,
            LambdaAuthorizerChange::Delete { .. } => Verb::Delete,
        }
    }

    fn action(&self) -> Action {
        match self {
            LambdaAuthorizerChange::Create { name } => Action::on(Call::CreateAuthorizer, name),
            LambdaAuthorizerChange::Update { name, .. } => Action::on(Call::UpdateAuthorizer, name),
            LambdaAuthorizerChange::Delete { name, .. } => Action::on(Call::DeleteAuthorizer, name),
        }
    }

    fn describe(&self) -> String {
        match self {
            LambdaAuthorizerChange::Create { name } => {
                format!("Created the Lambda authorizer {name}")
            }
            LambdaAuthorizerChange::Update { id, name } => format!(
                "Updated Lambda authorizer {name} ({id}): function, identity sources, cache \
                 and response format as planned"
            ),
            LambdaAuthorizerChange::Delete { id, name } => {
                format!("Deleted unused Lambda authorizer {name} ({id})")
            }
        }
    }
}

/// The authorizer of `observed` each planned one is (the first of its name), by its
/// spec.authorizers name.
pub fn chosen<'o>(
    planned: &[LambdaAuthorizerPlan],
    observed: &'o [RequestAuthorizer],
) -> BTreeMap<String, &'o RequestAuthorizer> {
    planned
        .iter()
        .filter_map(|p| {
            let found = observed.iter().find(|a| a.name == p.name)?;
            Some((p.key.clone(), found))
        })
        .collect()
}

/// The id of each planned authorizer that exists, by its spec.authorizers name (what
/// routes name).
pub fn ids(
    planned: &[LambdaAuthorizerPlan],
    observed: &[RequestAuthorizer],
) -> BTreeMap<String, String> {
    chosen(planned, observed)
        .into_iter()
        .map(|(key, a)| (key, a.id.clone()))
        .collect()
}

pub fn diff(wanted: &Wanted, observed: &[RequestAuthorizer]) -> Vec<LambdaAuthorizerChange> {
    let current = chosen(&wanted.authorizers, observed);
    let mut changes = Vec::new();
    for planned in &wanted.authorizers {
        match current.get(&planned.key) {
            None => changes.push(LambdaAuthorizerChange::Create {
                name: planned.name.clone(),
            }),
            Some(a) if a.config != planned.config => changes.push(LambdaAuthorizerChange::Update {
                id: a.id.clone(),
                name: a.name.clone(),
            }),
            Some(_) => {}
        }
    }
    if wanted.prune {
        changes.extend(
            observed
                .iter()
                .filter(|a| !current.values().any(|c| c.id == a.id))
                .map(|a| LambdaAuthorizerChange::Delete {
                    id: a.id.clone(),
                    name: a.name.clone(),
                }),
        );
    }
    changes
}

#[async_trait::async_trait]
impl Managed for LambdaAuthorizers<'_> {
    type Desired = Wanted;
    type Observed = Vec<RequestAuthorizer>;
    type Change = LambdaAuthorizerChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    async fn observe(
        &self,
        _: &mut Driver<'_>,
        _: &Wanted,
    ) -> Result<Vec<RequestAuthorizer>, Error> {
        Ok(self
            .listed
            .iter()
            .filter_map(Authorizer::as_request)
            .cloned()
            .collect())
    }

    fn diff(
        &self,
        wanted: &Wanted,
        observed: &Vec<RequestAuthorizer>,
    ) -> Vec<LambdaAuthorizerChange> {
        diff(wanted, observed)
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        wanted: &Wanted,
        observed: &mut Vec<RequestAuthorizer>,
        change: &LambdaAuthorizerChange,
    ) -> Result<Option<Created>, Error> {
        let gw = &d.aws.apigateway;
        let planned = |name: &str| wanted.authorizers.iter().find(|p| p.name == name);
        match change {
            LambdaAuthorizerChange::Create { name } => {
                // The diff creates only what is planned.
                let Some(plan) = planned(name) else {
                    return Ok(None);
                };
                let id = gw
                    .create_request_authorizer(self.api_id, name, &plan.config)
                    .await?;
                observed.push(RequestAuthorizer {
                    id,
                    name: name.clone(),
                    config: plan.config.clone(),
                });
            }
            LambdaAuthorizerChange::Update { id, name } => {
                let Some(plan) = planned(name) else {
                    return Ok(None);
                };
                gw.update_request_authorizer(self.api_id, id, &plan.config)
                    .await?;
                if let Some(a) = observed.iter_mut().find(|a| a.id == *id) {
                    a.config = plan.config.clone();
                }
            }
            LambdaAuthorizerChange::Delete { id, .. } => {
                gone_is_done(gw.delete_authorizer(self.api_id, id).await)?;
                observed.retain(|a| a.id != *id);
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::apigateway::LambdaAuthorizerConfig;

    fn config(function: &str, ttl: i32) -> LambdaAuthorizerConfig {
        LambdaAuthorizerConfig {
            uri: format!("uri-of-{function}"),
            identity_sources: vec!["$request.header.Authorization".into()],
            result_ttl_seconds: ttl,
            simple_responses: true,
            payload_format_version: "2.0".into(),
        }
    }

    fn planned(key: &str, function: &str) -> LambdaAuthorizerPlan {
        LambdaAuthorizerPlan {
            key: key.into(),
            name: format!("lambda-{key}"),
            function_arn: function.into(),
            config: config(function, 300),
        }
    }

    fn existing(id: &str, name: &str, config: LambdaAuthorizerConfig) -> RequestAuthorizer {
        RequestAuthorizer {
            id: id.into(),
            name: name.into(),
            config,
        }
    }

    fn wanted(authorizers: Vec<LambdaAuthorizerPlan>, prune: bool) -> Wanted {
        Wanted { authorizers, prune }
    }

    #[test]
    fn a_planned_authorizer_is_created() {
        assert_eq!(
            diff(&wanted(vec![planned("users", "f")], false), &[]),
            vec![LambdaAuthorizerChange::Create {
                name: "lambda-users".into()
            }]
        );
    }

    #[test]
    fn one_as_planned_needs_nothing() {
        let observed = [existing("a", "lambda-users", config("f", 300))];
        assert!(diff(&wanted(vec![planned("users", "f")], true), &observed).is_empty());
    }

    #[test]
    fn function_ttl_identity_sources_and_format_are_each_updated_in_place() {
        let update = vec![LambdaAuthorizerChange::Update {
            id: "a".into(),
            name: "lambda-users".into(),
        }];
        let mut sources = config("f", 300);
        sources.identity_sources = vec!["$request.header.X-Other".into()];
        let mut format = config("f", 300);
        format.simple_responses = false;
        for drifted in [config("other", 300), config("f", 0), sources, format] {
            let observed = [existing("a", "lambda-users", drifted.clone())];
            assert_eq!(
                diff(&wanted(vec![planned("users", "f")], false), &observed),
                update,
                "{drifted:?}"
            );
        }
    }

    #[test]
    fn pruning_deletes_unplanned_and_duplicate_authorizers_only_when_asked() {
        let observed = [
            existing("a", "lambda-users", config("f", 300)),
            existing("b", "lambda-users", config("f", 300)),
            existing("c", "lambda-old", config("f", 300)),
        ];
        let deletes = vec![
            LambdaAuthorizerChange::Delete {
                id: "b".into(),
                name: "lambda-users".into(),
            },
            LambdaAuthorizerChange::Delete {
                id: "c".into(),
                name: "lambda-old".into(),
            },
        ];
        assert_eq!(
            diff(&wanted(vec![planned("users", "f")], true), &observed),
            deletes
        );
        assert!(diff(&wanted(vec![planned("users", "f")], false), &observed).is_empty());
        assert_eq!(diff(&wanted(Vec::new(), true), &observed).len(), 3);
    }

    #[test]
    fn routes_find_each_authorizer_by_its_spec_name() {
        let observed = [existing("a", "lambda-users", config("f", 300))];
        let planned = [planned("users", "f"), planned("admins", "g")];
        assert_eq!(
            ids(&planned, &observed),
            BTreeMap::from([("users".to_owned(), "a".to_owned())])
        );
    }
}
