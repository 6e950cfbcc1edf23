//! An API's routes, kept as a set keyed by route key: each planned route targets its
//! integration with its authorization (always sent explicitly, NONE included: API Gateway
//! keeps an old AWS_IAM otherwise); routes the spec no longer has are deleted.

use std::collections::HashMap;

use super::authorizer::sorted;
use crate::aws::apigateway::{Route, RouteAuth};
use crate::reconcile::Error;
use crate::reconcile::driver::{
    Change, Created, Driver, KindInfo, Managed, TagUpkeep, gone_is_done,
};
use crate::reconcile::events::{Action, Call, Verb};

pub const INFO: KindInfo = KindInfo {
    name: "route",
    unique_names: true,
    pending: None,
    creates: &[Call::CreateRoute],
    tags: TagUpkeep::None,
};

/// The routes of the API `api_id`.
pub struct Routes<'a> {
    pub api_id: &'a str,
    /// The API was created by this reconcile: it has none yet, no need to ask.
    pub new_api: bool,
}

/// One route as planned, with the ids it points at.
#[derive(Clone, Debug, PartialEq)]
pub struct WantedRoute {
    pub key: String,
    pub integration_id: String,
    pub auth: RouteAuth,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RouteChange {
    Create(WantedRoute),
    Update { id: String, route: WantedRoute },
    Delete { id: String, key: String },
}

impl Change for RouteChange {
    fn verb(&self) -> Verb {
        match self {
            RouteChange::Create(_) => Verb::Create,
            RouteChange::Update { .. } => Verb::Update,
            RouteChange::Delete { .. } => Verb::Delete,
        }
    }

    fn action(&self) -> Action {
        match self {
            RouteChange::Create(r) => Action::on(Call::CreateRoute, &r.key),
            RouteChange::Update { route, .. } => Action::on(Call::UpdateRoute, &route.key),
            RouteChange::Delete { key, .. } => Action::on(Call::DeleteRoute, key),
        }
    }

    fn describe(&self) -> String {
        match self {
            RouteChange::Create(r) => format!("Created route {} ({})", r.key, auth_name(&r.auth)),
            RouteChange::Update { route, .. } => {
                format!("Updated route {} ({})", route.key, auth_name(&route.auth))
            }
            RouteChange::Delete { key, .. } => format!("Deleted route {key}"),
        }
    }
}

pub fn diff(wanted: &[WantedRoute], observed: &[Route]) -> Vec<RouteChange> {
    let by_key: HashMap<&str, &Route> = observed.iter().map(|r| (r.key.as_str(), r)).collect();
    let mut changes = Vec::new();
    for route in wanted {
        match by_key.get(route.key.as_str()) {
            None => changes.push(RouteChange::Create(route.clone())),
            Some(current)
                if current.integration_id.as_deref() == Some(route.integration_id.as_str())
                    && same_auth(&current.auth, &route.auth) => {}
            Some(current) => changes.push(RouteChange::Update {
                id: current.id.clone(),
                route: route.clone(),
            }),
        }
    }
    changes.extend(
        observed
            .iter()
            .filter(|r| !wanted.iter().any(|w| w.key == r.key))
            .map(|r| RouteChange::Delete {
                id: r.id.clone(),
                key: r.key.clone(),
            }),
    );
    changes
}

#[async_trait::async_trait]
impl Managed for Routes<'_> {
    type Desired = Vec<WantedRoute>;
    type Observed = Vec<Route>;
    type Change = RouteChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    async fn observe(&self, d: &mut Driver<'_>, _: &Vec<WantedRoute>) -> Result<Vec<Route>, Error> {
        if self.new_api {
            return Ok(Vec::new());
        }
        Ok(d.aws.apigateway.list_routes(self.api_id).await?)
    }

    fn diff(&self, wanted: &Vec<WantedRoute>, observed: &Vec<Route>) -> Vec<RouteChange> {
        diff(wanted, observed)
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        _: &Vec<WantedRoute>,
        observed: &mut Vec<Route>,
        change: &RouteChange,
    ) -> Result<Option<Created>, Error> {
        let gw = &d.aws.apigateway;
        match change {
            RouteChange::Create(r) => {
                let id = gw
                    .create_route(self.api_id, &r.key, &r.integration_id, &r.auth)
                    .await?;
                observed.push(Route {
                    id,
                    key: r.key.clone(),
                    integration_id: Some(r.integration_id.clone()),
                    auth: r.auth.clone(),
                });
            }
            RouteChange::Update { id, route } => {
                gw.update_route(self.api_id, id, &route.integration_id, &route.auth)
                    .await?;
                if let Some(current) = observed.iter_mut().find(|r| r.id == *id) {
                    current.integration_id = Some(route.integration_id.clone());
                    current.auth = route.auth.clone();
                }
            }
            RouteChange::Delete { id, .. } => {
                gone_is_done(gw.delete_route(self.api_id, id).await)?;
                observed.retain(|r| r.id != *id);
            }
        }
        Ok(None)
    }
}

/// Scopes are a set: their order is not a difference.
fn same_auth(current: &RouteAuth, wanted: &RouteAuth) -> bool {
    match (current, wanted) {
        (
            RouteAuth::Jwt {
                authorizer_id: a,
                scopes: s,
            },
            RouteAuth::Jwt {
                authorizer_id: b,
                scopes: t,
            },
        ) => a == b && sorted(s) == sorted(t),
        _ => current == wanted,
    }
}

fn auth_name(auth: &RouteAuth) -> &'static str {
    match auth {
        RouteAuth::None => "NONE",
        RouteAuth::Iam => "AWS_IAM",
        RouteAuth::Jwt { .. } => "JWT",
        RouteAuth::Custom { .. } => "CUSTOM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(key: &str, integration: &str, auth: RouteAuth) -> WantedRoute {
        WantedRoute {
            key: key.into(),
            integration_id: integration.into(),
            auth,
        }
    }

    fn existing(id: &str, key: &str, integration: &str, auth: RouteAuth) -> Route {
        Route {
            id: id.into(),
            key: key.into(),
            integration_id: Some(integration.into()),
            auth,
        }
    }

    fn jwt(scopes: &[&str]) -> RouteAuth {
        RouteAuth::Jwt {
            authorizer_id: "au".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_missing_route_is_created() {
        let changes = diff(&[wanted("GET /a", "i1", RouteAuth::Iam)], &[]);
        assert_eq!(
            changes,
            vec![RouteChange::Create(wanted("GET /a", "i1", RouteAuth::Iam))]
        );
    }

    #[test]
    fn a_route_as_planned_needs_nothing_whatever_its_scope_order() {
        let observed = [existing("r", "GET /a", "i1", jwt(&["b", "a"]))];
        assert!(diff(&[wanted("GET /a", "i1", jwt(&["a", "b"]))], &observed).is_empty());
    }

    #[test]
    fn target_authorization_and_scopes_are_each_updated() {
        let base = [existing("r", "GET /a", "i1", RouteAuth::Iam)];
        for changed in [
            wanted("GET /a", "i2", RouteAuth::Iam),
            wanted("GET /a", "i1", RouteAuth::None),
            wanted("GET /a", "i1", jwt(&[])),
            wanted(
                "GET /a",
                "i1",
                RouteAuth::Custom {
                    authorizer_id: "lambda".into(),
                },
            ),
        ] {
            assert_eq!(
                diff(std::slice::from_ref(&changed), &base),
                vec![RouteChange::Update {
                    id: "r".into(),
                    route: changed.clone()
                }]
            );
        }
        let scoped = [existing("r", "GET /a", "i1", jwt(&["read"]))];
        assert_eq!(
            diff(&[wanted("GET /a", "i1", jwt(&["write"]))], &scoped).len(),
            1
        );
        let custom = |id: &str| RouteAuth::Custom {
            authorizer_id: id.into(),
        };
        let lambda = [existing("r", "GET /a", "i1", custom("old"))];
        assert_eq!(
            diff(&[wanted("GET /a", "i1", custom("new"))], &lambda).len(),
            1,
            "another Lambda authorizer"
        );
    }

    #[test]
    fn a_route_no_longer_planned_is_deleted() {
        let observed = [existing("r", "GET /old", "i1", RouteAuth::Iam)];
        assert_eq!(
            diff(&[], &observed),
            vec![RouteChange::Delete {
                id: "r".into(),
                key: "GET /old".into()
            }]
        );
    }
}
