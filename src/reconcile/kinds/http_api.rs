//! The HTTP API itself: created tagged as this object's, its CORS and default-endpoint
//! settings kept as the spec says, deleted (with everything in it) when the object goes.
//! API names are not unique in API Gateway: the id in status finds ours, and a pending
//! marker set before the create lets a restart find one whose id never reached status.

use crate::api::AuthedApiStatus;
use crate::aws::apigateway::{ApiGateway, CorsConfig, HttpApi};
use crate::reconcile::adoption;
use crate::reconcile::driver::{
    Change, Created, Driver, KindInfo, Managed, TagUpkeep, Tagged, gone_is_done,
};
use crate::reconcile::events::{Action, Call, Verb};
use crate::reconcile::{Conflict, Error};

pub const INFO: KindInfo = KindInfo {
    name: "HTTP API",
    unique_names: false,
    pending: Some("HttpApi"),
    creates: &[Call::CreateApi],
    tags: TagUpkeep::Reported,
};

pub struct HttpApiKind;

/// The API as planned.
#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub cors: Option<CorsConfig>,
    pub disable_execute_api_endpoint: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ApiChange {
    Create,
    /// On the API in use (the one just created, when it comes after `Create`).
    Settings {
        cors: Option<CorsConfig>,
        had_cors: bool,
        disable_execute_api_endpoint: bool,
    },
    Delete {
        id: String,
        name: String,
    },
}

impl Change for ApiChange {
    fn verb(&self) -> Verb {
        match self {
            ApiChange::Create => Verb::Create,
            ApiChange::Settings { .. } => Verb::Update,
            ApiChange::Delete { .. } => Verb::Delete,
        }
    }

    fn action(&self) -> Action {
        match self {
            ApiChange::Create => Action::of(Call::CreateApi),
            ApiChange::Settings { .. } => Action::of(Call::UpdateApi),
            ApiChange::Delete { id, .. } => Action::on(Call::DeleteApi, id),
        }
    }

    fn describe(&self) -> String {
        match self {
            ApiChange::Create => "Created the HTTP API".into(),
            ApiChange::Settings {
                cors,
                disable_execute_api_endpoint,
                ..
            } => format!(
                "Set CORS ({}) and the default endpoint ({})",
                if cors.is_some() { "on" } else { "off" },
                if *disable_execute_api_endpoint {
                    "disabled"
                } else {
                    "enabled"
                }
            ),
            ApiChange::Delete { id, name } => format!("Deleted HTTP API {name} ({id})"),
        }
    }
}

/// The pure part: what to do to `ours` (the first is the one in use) for `wanted`.
pub fn diff(wanted: Option<&Wanted>, ours: &[HttpApi]) -> Vec<ApiChange> {
    match (wanted, ours.first()) {
        // CreateApi takes no settings: they follow, unless they are the defaults.
        (Some(w), None) if w.cors.is_none() && !w.disable_execute_api_endpoint => {
            vec![ApiChange::Create]
        }
        (Some(w), None) => vec![
            ApiChange::Create,
            ApiChange::Settings {
                cors: w.cors.clone(),
                had_cors: false,
                disable_execute_api_endpoint: w.disable_execute_api_endpoint,
            },
        ],
        (Some(w), Some(api)) => {
            if api.cors == w.cors
                && api.disable_execute_api_endpoint == w.disable_execute_api_endpoint
            {
                Vec::new()
            } else {
                vec![ApiChange::Settings {
                    cors: w.cors.clone(),
                    had_cors: api.cors.is_some(),
                    disable_execute_api_endpoint: w.disable_execute_api_endpoint,
                }]
            }
        }
        (None, _) => ours
            .iter()
            .map(|api| ApiChange::Delete {
                id: api.id.clone(),
                name: api.name.clone(),
            })
            .collect(),
    }
}

#[async_trait::async_trait]
impl Managed for HttpApiKind {
    type Desired = Option<Wanted>;
    /// Our APIs: the one in status (or adopted after a crash) first.
    type Observed = Vec<HttpApi>;
    type Change = ApiChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    async fn observe(
        &self,
        d: &mut Driver<'_>,
        desired: &Option<Wanted>,
    ) -> Result<Vec<HttpApi>, Error> {
        let gw = &d.aws.apigateway;
        let mut ours = Vec::new();
        if let Some(id) = d.status.api_id.clone() {
            match gw.get_api(&id).await? {
                Some(api) if d.is_ours(&api.tags) => ours.push(api),
                Some(_) if desired.is_some() => {
                    return Err(
                        Conflict::untagged(d, format!("the HTTP API {id} in status"))
                            .remedy("delete the status' apiId or restore the API's tags")
                            .into(),
                    );
                }
                // Not ours (nothing of ours to delete), or deleted behind our back.
                _ => {}
            }
        }
        // The API spec.adopt names, at the first reconcile: handed over by the platform's
        // mark, or refused before anything is changed.
        if let Some(id) = adoption::api_to_adopt(d).filter(|_| desired.is_some()) {
            let api = adoption::api(d, &id).await?;
            let made = created(d, &api);
            d.record(|status| {
                status.api_id = Some(made.id.clone());
                status.api_endpoint = made.endpoint.clone();
            })
            .await?;
            ours.push(api);
        }
        if d.is_pending(&INFO) && (ours.is_empty() || desired.is_none()) {
            // A create may have happened whose id never reached status: find it by name
            // and uid tag. (Names are not unique; one not tagged as ours is someone else's.)
            for api in gw.find_apis_by_name(&d.plan.api_name).await? {
                if d.is_ours(&api.tags) && !ours.iter().any(|a| a.id == api.id) {
                    ours.push(api);
                }
            }
        }
        Ok(ours)
    }

    fn diff(&self, desired: &Option<Wanted>, observed: &Vec<HttpApi>) -> Vec<ApiChange> {
        diff(desired.as_ref(), observed)
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        _desired: &Option<Wanted>,
        observed: &mut Vec<HttpApi>,
        change: &ApiChange,
    ) -> Result<Option<Created>, Error> {
        let gw = &d.aws.apigateway;
        match change {
            ApiChange::Create => {
                let api = gw.create_api(&d.plan.api_name, &d.plan.tags).await?;
                let made = created(d, &api);
                observed.insert(0, api);
                return Ok(Some(made));
            }
            ApiChange::Settings {
                cors,
                had_cors,
                disable_execute_api_endpoint,
            } => {
                // The diff puts settings only after an API exists or is created.
                let Some(id) = observed.first().map(|api| api.id.clone()) else {
                    return Ok(None);
                };
                gw.update_api_settings(
                    &id,
                    cors.as_ref(),
                    *had_cors,
                    *disable_execute_api_endpoint,
                )
                .await?;
                if let Some(api) = observed.first_mut() {
                    api.cors = cors.clone();
                    api.disable_execute_api_endpoint = *disable_execute_api_endpoint;
                }
            }
            ApiChange::Delete { id, .. } => {
                gone_is_done(gw.delete_api(id).await)?;
                observed.retain(|api| api.id != *id);
            }
        }
        Ok(None)
    }

    /// The id and endpoint, which every later kind reads, saved before they are made.
    fn record(&self, status: &mut AuthedApiStatus, made: &Created) {
        status.api_id = Some(made.id.clone());
        status.api_endpoint = made.endpoint.clone();
    }

    /// The first of ours found by name, when the API is wanted.
    fn adopted(
        &self,
        d: &Driver<'_>,
        desired: &Option<Wanted>,
        observed: &Vec<HttpApi>,
    ) -> Option<Created> {
        let api = observed.first().filter(|_| desired.is_some())?;
        Some(created(d, api))
    }

    fn reported_tags<'o>(&self, d: &Driver<'_>, observed: &'o Vec<HttpApi>) -> Vec<Tagged<'o>> {
        observed
            .iter()
            .take(1)
            .map(|api| Tagged {
                what: format!("HTTP API {}", api.id),
                arn: ApiGateway::api_arn(&d.plan.partition, &d.plan.region, &api.id),
                tags: &api.tags,
            })
            .collect()
    }
}

/// What a create made: the id, and the endpoint (AWS's, or the one it will have).
fn created(d: &Driver<'_>, api: &HttpApi) -> Created {
    let endpoint = if api.endpoint.is_empty() {
        d.plan.endpoint(&api.id)
    } else {
        api.endpoint.clone()
    };
    Created {
        id: api.id.clone(),
        endpoint: Some(endpoint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(id: &str, cors: Option<CorsConfig>, disabled: bool) -> HttpApi {
        HttpApi {
            id: id.into(),
            name: "n".into(),
            endpoint: String::new(),
            tags: Default::default(),
            cors,
            disable_execute_api_endpoint: disabled,
        }
    }

    fn wanted(cors: Option<CorsConfig>, disabled: bool) -> Wanted {
        Wanted {
            cors,
            disable_execute_api_endpoint: disabled,
        }
    }

    #[test]
    fn a_missing_api_is_created() {
        assert_eq!(
            diff(Some(&wanted(None, false)), &[]),
            vec![ApiChange::Create]
        );
    }

    #[test]
    fn a_new_api_gets_its_settings_right_after_the_create() {
        let changes = diff(Some(&wanted(None, true)), &[]);
        assert_eq!(
            changes,
            vec![
                ApiChange::Create,
                ApiChange::Settings {
                    cors: None,
                    had_cors: false,
                    disable_execute_api_endpoint: true
                }
            ]
        );
    }

    #[test]
    fn an_api_as_planned_needs_nothing() {
        assert!(diff(Some(&wanted(None, false)), &[api("a", None, false)]).is_empty());
    }

    #[test]
    fn cors_and_the_default_endpoint_are_updated_when_they_differ() {
        let cors = CorsConfig {
            allow_origins: vec!["https://app".into()],
            ..Default::default()
        };
        let changes = diff(
            Some(&wanted(Some(cors.clone()), false)),
            &[api("a", None, false)],
        );
        assert_eq!(
            changes,
            vec![ApiChange::Settings {
                cors: Some(cors),
                had_cors: false,
                disable_execute_api_endpoint: false
            }]
        );
        let changes = diff(Some(&wanted(None, true)), &[api("a", None, false)]);
        assert!(matches!(
            &changes[..],
            [ApiChange::Settings {
                disable_execute_api_endpoint: true,
                ..
            }]
        ));
    }

    #[test]
    fn nothing_wanted_deletes_every_api_of_ours() {
        let changes = diff(None, &[api("a", None, false), api("b", None, false)]);
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().all(|c| c.verb() == Verb::Delete));
    }
}
