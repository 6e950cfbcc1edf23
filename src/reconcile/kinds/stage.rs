//! The `$default` stage: auto-deploy on (every change goes live), throttling and access
//! logs as the spec says. It goes with its API, so it is never deleted on its own. Its
//! tags, like the API's, are set at creation and their drift reported.

use crate::aws::apigateway::{ApiGateway, DEFAULT_STAGE, Stage, StageSettings};
use crate::reconcile::Error;
use crate::reconcile::driver::{Change, Created, Driver, KindInfo, Managed, TagUpkeep, Tagged};
use crate::reconcile::events::{Action, Call, Verb};

pub const INFO: KindInfo = KindInfo {
    name: "stage",
    unique_names: true,
    pending: None,
    creates: &[Call::CreateStage],
    tags: TagUpkeep::Reported,
};

/// The `$default` stage of the API `api_id`.
pub struct DefaultStage<'a> {
    pub api_id: &'a str,
    /// The API was created by this reconcile: it has none yet, no need to ask.
    pub new_api: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StageChange {
    Create,
    /// From the settings it has.
    Update(StageSettings),
}

impl Change for StageChange {
    fn verb(&self) -> Verb {
        match self {
            StageChange::Create => Verb::Create,
            StageChange::Update(_) => Verb::Update,
        }
    }

    fn action(&self) -> Action {
        match self {
            StageChange::Create => Action::of(Call::CreateStage),
            StageChange::Update(_) => Action::of(Call::UpdateStage),
        }
    }

    fn describe(&self) -> String {
        match self {
            StageChange::Create => "Created the $default stage (auto-deploy)".into(),
            StageChange::Update(_) => {
                "Updated the $default stage (auto-deploy, throttling, access logs)".into()
            }
        }
    }
}

pub fn diff(wanted: &StageSettings, observed: Option<&Stage>) -> Vec<StageChange> {
    match observed {
        None => vec![StageChange::Create],
        Some(stage) if stage.auto_deploy && stage.settings == *wanted => Vec::new(),
        Some(stage) => vec![StageChange::Update(stage.settings.clone())],
    }
}

#[async_trait::async_trait]
impl Managed for DefaultStage<'_> {
    type Desired = StageSettings;
    type Observed = Option<Stage>;
    type Change = StageChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    async fn observe(&self, d: &mut Driver<'_>, _: &StageSettings) -> Result<Option<Stage>, Error> {
        if self.new_api {
            return Ok(None);
        }
        Ok(d.aws
            .apigateway
            .get_stage(self.api_id, DEFAULT_STAGE)
            .await?)
    }

    fn diff(&self, wanted: &StageSettings, observed: &Option<Stage>) -> Vec<StageChange> {
        diff(wanted, observed.as_ref())
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        wanted: &StageSettings,
        observed: &mut Option<Stage>,
        change: &StageChange,
    ) -> Result<Option<Created>, Error> {
        let gw = &d.aws.apigateway;
        match change {
            StageChange::Create => {
                gw.create_stage(self.api_id, DEFAULT_STAGE, &d.plan.tags, wanted)
                    .await?
            }
            StageChange::Update(current) => {
                gw.update_stage_settings(self.api_id, DEFAULT_STAGE, current, wanted)
                    .await?
            }
        }
        let tags = observed
            .take()
            .map(|s| s.tags)
            .unwrap_or_else(|| d.plan.tags.clone());
        *observed = Some(Stage {
            name: DEFAULT_STAGE.into(),
            auto_deploy: true,
            tags,
            settings: wanted.clone(),
        });
        Ok(None)
    }

    fn reported_tags<'o>(&self, d: &Driver<'_>, observed: &'o Option<Stage>) -> Vec<Tagged<'o>> {
        observed
            .iter()
            .map(|stage| Tagged {
                what: format!("{DEFAULT_STAGE} stage of {}", self.api_id),
                arn: format!(
                    "{}/stages/{DEFAULT_STAGE}",
                    ApiGateway::api_arn(&d.plan.partition, &d.plan.region, self.api_id)
                ),
                tags: &stage.tags,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::apigateway::Throttle;

    fn stage(auto_deploy: bool, settings: StageSettings) -> Stage {
        Stage {
            name: DEFAULT_STAGE.into(),
            auto_deploy,
            tags: Default::default(),
            settings,
        }
    }

    fn throttled(burst: i32) -> StageSettings {
        StageSettings {
            default_throttle: Some(Throttle { burst, rate: 10.0 }),
            ..Default::default()
        }
    }

    #[test]
    fn a_missing_stage_is_created() {
        assert_eq!(
            diff(&StageSettings::default(), None),
            vec![StageChange::Create]
        );
    }

    #[test]
    fn a_stage_as_planned_needs_nothing() {
        assert!(diff(&throttled(5), Some(&stage(true, throttled(5)))).is_empty());
    }

    #[test]
    fn auto_deploy_off_and_each_setting_are_updated_from_what_the_stage_has() {
        assert_eq!(
            diff(&throttled(5), Some(&stage(false, throttled(5)))),
            vec![StageChange::Update(throttled(5))]
        );
        assert_eq!(
            diff(&throttled(5), Some(&stage(true, throttled(9)))),
            vec![StageChange::Update(throttled(9))]
        );
        let mut with_route = throttled(5);
        with_route.route_throttles.insert(
            "GET /a".into(),
            Throttle {
                burst: 1,
                rate: 1.0,
            },
        );
        assert_eq!(diff(&with_route, Some(&stage(true, throttled(5)))).len(), 1);
    }
}
