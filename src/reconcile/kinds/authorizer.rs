//! The API's JWT authorizer, when a route needs one: found by its planned name, its issuer
//! and audience kept as planned. Other JWT authorizers in the API (an old one, or every
//! one when no route needs JWT any more) are deleted in the `prune` pass, after the
//! routes. REQUEST authorizers are the Lambda authorizer kind's, never touched here.

use crate::aws::apigateway::{Authorizer as AnyAuthorizer, JwtAuthorizer};
use crate::plan::JwtPlan;
use crate::reconcile::Error;
use crate::reconcile::driver::{
    Change, Created, Driver, KindInfo, Managed, TagUpkeep, gone_is_done,
};
use crate::reconcile::events::{Action, Call, Verb};

pub const INFO: KindInfo = KindInfo {
    name: "JWT authorizer",
    unique_names: true,
    pending: None,
    creates: &[Call::CreateAuthorizer],
    tags: TagUpkeep::None,
};

/// The authorizers of the API `api_id`.
pub struct Authorizer<'a> {
    pub api_id: &'a str,
    /// Every authorizer of the API, as one GetAuthorizers (see [`list`]) read them for
    /// both authorizer kinds.
    pub listed: &'a [AnyAuthorizer],
}

/// The API's authorizers of both types, read once per reconcile for the JWT and the Lambda
/// authorizer kinds (a drift check then costs one read for both); a new API has none.
pub async fn list(
    d: &Driver<'_>,
    api_id: &str,
    new_api: bool,
) -> Result<Vec<AnyAuthorizer>, Error> {
    if new_api {
        return Ok(Vec::new());
    }
    Ok(d.aws.apigateway.list_authorizers(api_id).await?)
}

#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub jwt: Option<JwtPlan>,
    pub prune: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AuthorizerChange {
    Create,
    Update { id: String },
    Delete { id: String },
}

impl Change for AuthorizerChange {
    fn verb(&self) -> Verb {
        match self {
            AuthorizerChange::Create => Verb::Create,
            AuthorizerChange::Update { .. } => Verb::Update,
            AuthorizerChange::Delete { .. } => Verb::Delete,
        }
    }

    fn action(&self) -> Action {
        match self {
            AuthorizerChange::Create => Action::of(Call::CreateAuthorizer),
            AuthorizerChange::Update { .. } => Action::of(Call::UpdateAuthorizer),
            AuthorizerChange::Delete { id } => Action::on(Call::DeleteAuthorizer, id),
        }
    }

    fn describe(&self) -> String {
        match self {
            AuthorizerChange::Create => "Created the JWT authorizer".into(),
            AuthorizerChange::Update { id } => {
                format!("Updated JWT authorizer {id}: issuer and audience as planned")
            }
            AuthorizerChange::Delete { id } => format!("Deleted unused JWT authorizer {id}"),
        }
    }
}

/// The planned authorizer among `observed`.
pub fn chosen<'o>(
    jwt: Option<&JwtPlan>,
    observed: &'o [JwtAuthorizer],
) -> Option<&'o JwtAuthorizer> {
    let jwt = jwt?;
    observed.iter().find(|a| a.name == jwt.name)
}

pub fn diff(wanted: &Wanted, observed: &[JwtAuthorizer]) -> Vec<AuthorizerChange> {
    let current = chosen(wanted.jwt.as_ref(), observed);
    let mut changes = Vec::new();
    if let Some(jwt) = &wanted.jwt {
        match current {
            None => changes.push(AuthorizerChange::Create),
            Some(a) if a.issuer != jwt.issuer || sorted(&a.audience) != sorted(&jwt.audience) => {
                changes.push(AuthorizerChange::Update { id: a.id.clone() })
            }
            Some(_) => {}
        }
    }
    if wanted.prune {
        changes.extend(
            observed
                .iter()
                .filter(|a| current.is_none_or(|c| c.id != a.id))
                .map(|a| AuthorizerChange::Delete { id: a.id.clone() }),
        );
    }
    changes
}

#[async_trait::async_trait]
impl Managed for Authorizer<'_> {
    type Desired = Wanted;
    type Observed = Vec<JwtAuthorizer>;
    type Change = AuthorizerChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    async fn observe(&self, _: &mut Driver<'_>, _: &Wanted) -> Result<Vec<JwtAuthorizer>, Error> {
        Ok(self
            .listed
            .iter()
            .filter_map(AnyAuthorizer::as_jwt)
            .cloned()
            .collect())
    }

    fn diff(&self, wanted: &Wanted, observed: &Vec<JwtAuthorizer>) -> Vec<AuthorizerChange> {
        diff(wanted, observed)
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        wanted: &Wanted,
        observed: &mut Vec<JwtAuthorizer>,
        change: &AuthorizerChange,
    ) -> Result<Option<Created>, Error> {
        let gw = &d.aws.apigateway;
        match (change, &wanted.jwt) {
            (AuthorizerChange::Create, Some(jwt)) => {
                let id = gw
                    .create_jwt_authorizer(self.api_id, &jwt.name, &jwt.issuer, &jwt.audience)
                    .await?;
                observed.push(JwtAuthorizer {
                    id,
                    name: jwt.name.clone(),
                    issuer: jwt.issuer.clone(),
                    audience: jwt.audience.clone(),
                });
            }
            (AuthorizerChange::Update { id }, Some(jwt)) => {
                gw.update_jwt_authorizer(self.api_id, id, &jwt.issuer, &jwt.audience)
                    .await?;
                if let Some(a) = observed.iter_mut().find(|a| a.id == *id) {
                    a.issuer = jwt.issuer.clone();
                    a.audience = jwt.audience.clone();
                }
            }
            (AuthorizerChange::Delete { id }, _) => {
                gone_is_done(gw.delete_authorizer(self.api_id, id).await)?;
                observed.retain(|a| a.id != *id);
            }
            // The diff creates and updates only what is wanted.
            (AuthorizerChange::Create | AuthorizerChange::Update { .. }, None) => {}
        }
        Ok(None)
    }
}

pub(crate) fn sorted(items: &[String]) -> Vec<&String> {
    let mut items: Vec<&String> = items.iter().collect();
    items.sort();
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(issuer: &str, audience: &[&str]) -> JwtPlan {
        JwtPlan {
            name: "authedapi-jwt".into(),
            issuer: issuer.into(),
            audience: audience.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn existing(id: &str, name: &str, issuer: &str, audience: &[&str]) -> JwtAuthorizer {
        JwtAuthorizer {
            id: id.into(),
            name: name.into(),
            issuer: issuer.into(),
            audience: audience.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn wanted(jwt: Option<JwtPlan>, prune: bool) -> Wanted {
        Wanted { jwt, prune }
    }

    #[test]
    fn a_needed_authorizer_is_created() {
        let changes = diff(&wanted(Some(jwt("https://i/", &["a"])), false), &[]);
        assert_eq!(changes, vec![AuthorizerChange::Create]);
    }

    #[test]
    fn one_as_planned_needs_nothing_whatever_the_audience_order() {
        let observed = [existing("x", "authedapi-jwt", "https://i/", &["b", "a"])];
        assert!(
            diff(
                &wanted(Some(jwt("https://i/", &["a", "b"])), true),
                &observed
            )
            .is_empty()
        );
    }

    #[test]
    fn issuer_and_audience_are_each_updated() {
        let observed = [existing("x", "authedapi-jwt", "https://old/", &["a"])];
        let update = vec![AuthorizerChange::Update { id: "x".into() }];
        assert_eq!(
            diff(&wanted(Some(jwt("https://i/", &["a"])), false), &observed),
            update
        );
        let observed = [existing("x", "authedapi-jwt", "https://i/", &["old"])];
        assert_eq!(
            diff(&wanted(Some(jwt("https://i/", &["a"])), false), &observed),
            update
        );
    }

    #[test]
    fn pruning_deletes_every_other_jwt_authorizer_and_all_when_none_is_needed() {
        let observed = [
            existing("x", "authedapi-jwt", "https://i/", &["a"]),
            existing("y", "someone-else", "https://i/", &["a"]),
        ];
        assert_eq!(
            diff(&wanted(Some(jwt("https://i/", &["a"])), true), &observed),
            vec![AuthorizerChange::Delete { id: "y".into() }]
        );
        assert_eq!(diff(&wanted(None, true), &observed).len(), 2);
        assert!(diff(&wanted(None, false), &observed).is_empty());
    }
}
