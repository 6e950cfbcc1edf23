//! What a reconcile asks of Kubernetes besides the object itself: saving its status,
//! publishing events, the outputs ConfigMap, namespace labels, and fresh reads where the
//! cache may be behind (the tenants, another AuthedApi). Behind a trait, so the
//! reconcile logic runs in-process in unit tests against [`fake::Cluster`]-style fakes,
//! as it runs against the API server.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ObjectReference};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::FIELD_MANAGER;
use super::events::{Action, Reason};
use crate::api::{AuthedApi, AuthedApiStatus};
use crate::tenant::AuthedApiTenant;

/// The Kubernetes side of a reconcile.
#[async_trait::async_trait]
pub trait Cluster: Send + Sync {
    /// Write `status` as the whole status of `namespace/name` (server-side apply, our
    /// field manager).
    async fn save_status(
        &self,
        namespace: &str,
        name: &str,
        status: &AuthedApiStatus,
    ) -> Result<(), kube::Error>;

    /// Publish an event about `obj`; failures are logged, never fatal.
    async fn publish(
        &self,
        obj: &AuthedApi,
        type_: EventType,
        reason: Reason,
        action: &Action,
        note: String,
    );

    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, kube::Error>;

    async fn apply_config_map(
        &self,
        namespace: &str,
        config_map: &ConfigMap,
    ) -> Result<(), kube::Error>;

    /// Delete a ConfigMap; absent counts as deleted.
    async fn delete_config_map(&self, namespace: &str, name: &str) -> Result<(), kube::Error>;

    async fn namespace_labels(
        &self,
        namespace: &str,
    ) -> Result<BTreeMap<String, String>, kube::Error>;

    /// Every AuthedApiTenant, read now (not from the cache).
    async fn tenants(&self) -> Result<Vec<AuthedApiTenant>, kube::Error>;

    /// The AuthedApi `namespace/name` as the API server has it now (None: gone).
    async fn authed_api(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<AuthedApi>, kube::Error>;
}

/// `event` about `regarding` as an events.k8s.io/v1 Event, as kube's Recorder makes one.
fn normal_event(event: &Event, regarding: ObjectReference, reporter: &Reporter) -> K8sEvent {
    let now = k8s_openapi::jiff::Timestamp::now();
    K8sEvent {
        metadata: ObjectMeta {
            namespace: regarding.namespace.clone(),
            name: Some(format!(
                "{}.{:x}",
                regarding.name.as_deref().unwrap_or(&reporter.controller),
                now.as_nanosecond()
            )),
            ..Default::default()
        },
        action: Some(event.action.clone()),
        reason: Some(event.reason.clone()),
        note: event.note.clone(),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding),
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(
            reporter
                .instance
                .clone()
                .unwrap_or_else(|| reporter.controller.clone()),
        ),
        type_: Some("Normal".into()),
        ..Default::default()
    }
}

/// The API server.
pub struct KubeCluster {
    pub client: kube::Client,
    /// Publishes warnings, folding a repeated one into one event's series.
    pub recorder: Recorder,
    /// Who reports the events this cluster creates itself.
    pub reporter: Reporter,
}

#[async_trait::async_trait]
impl Cluster for KubeCluster {
    async fn save_status(
        &self,
        namespace: &str,
        name: &str,
        status: &AuthedApiStatus,
    ) -> Result<(), kube::Error> {
        #[cfg(feature = "test-hooks")]
        crate::testhooks::before_status_write();
        let patch = serde_json::json!({
            "apiVersion": "authedapi.dev/v1alpha1",
            "kind": "AuthedApi",
            "status": status,
        });
        Api::<AuthedApi>::namespaced(self.client.clone(), namespace)
            .patch_status(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map(drop)
    }

    async fn publish(
        &self,
        obj: &AuthedApi,
        type_: EventType,
        reason: Reason,
        action: &Action,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.as_str().to_owned(),
            note: Some(truncate(note, 1024)),
            action: truncate(action.to_string(), 128),
            secondary: None,
        };
        // Normal events are one-off facts (Created, Updated, Deleted, Ready): created as
        // they are. Warnings repeat while a problem lasts: the Recorder folds repeats into
        // one event's series, and keeps each event it published for 6 minutes to do so —
        // for every event, about 20 per new object, that cache was most of the operator's
        // memory at scale (and scanned whole at each publish).
        let reference = obj.object_ref(&());
        let result = match type_ {
            EventType::Warning => self.recorder.publish(&event, &reference).await,
            EventType::Normal => {
                let namespace = reference.namespace.clone().unwrap_or_default();
                Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
                    .create(
                        &PostParams::default(),
                        &normal_event(&event, reference, &self.reporter),
                    )
                    .await
                    .map(drop)
            }
        };
        if let Err(e) = result {
            tracing::debug!("could not publish event {}: {e}", reason.as_str());
        }
    }

    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, kube::Error> {
        Api::<ConfigMap>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
    }

    async fn apply_config_map(
        &self,
        namespace: &str,
        config_map: &ConfigMap,
    ) -> Result<(), kube::Error> {
        let name = config_map.metadata.name.clone().unwrap_or_default();
        Api::<ConfigMap>::namespaced(self.client.clone(), namespace)
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(config_map),
            )
            .await
            .map(drop)
    }

    async fn delete_config_map(&self, namespace: &str, name: &str) -> Result<(), kube::Error> {
        match Api::<ConfigMap>::namespaced(self.client.clone(), namespace)
            .delete(name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn namespace_labels(
        &self,
        namespace: &str,
    ) -> Result<BTreeMap<String, String>, kube::Error> {
        Ok(Api::<Namespace>::all(self.client.clone())
            .get(namespace)
            .await?
            .metadata
            .labels
            .unwrap_or_default())
    }

    async fn tenants(&self) -> Result<Vec<AuthedApiTenant>, kube::Error> {
        Ok(Api::<AuthedApiTenant>::all(self.client.clone())
            .list(&ListParams::default())
            .await?
            .items)
    }

    async fn authed_api(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<AuthedApi>, kube::Error> {
        Api::<AuthedApi>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
    }
}

pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max - 3;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}
