//! The outputs ConfigMap: the API's coordinates for other workloads, owned by the
//! AuthedApi (so Kubernetes' garbage collector removes it with the object; the operator
//! also deletes it on cleanup and when the spec names another one or none).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams};
use kube::{Resource, ResourceExt};

use super::{Error, FIELD_MANAGER, Step};
use crate::api::AuthedApi;
use crate::plan::normalize_domain;

/// Write (or remove) the ConfigMap the spec asks for.
pub async fn ensure(step: &mut Step<'_>) -> Result<(), Error> {
    let obj = step.obj;
    let namespace = obj.namespace().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(step.ctx.client.clone(), &namespace);
    let wanted = obj.spec.outputs.as_ref().map(|o| o.config_map_name.clone());
    let previous = step.writer.status.outputs_config_map.clone();
    if let Some(old) = previous.filter(|old| Some(old) != wanted.as_ref()) {
        delete(&api, &old).await?;
    }
    let Some(name) = wanted else {
        step.writer.status.outputs_config_map = None;
        return Ok(());
    };
    let status = &step.writer.status;
    let data = BTreeMap::from([
        (
            "endpoint".to_owned(),
            status.api_endpoint.clone().unwrap_or_default(),
        ),
        (
            "identityPoolId".to_owned(),
            status.identity_pool_id.clone().unwrap_or_default(),
        ),
        ("region".to_owned(), step.plan.region.clone()),
        (
            "auth0Domain".to_owned(),
            normalize_domain(&obj.spec.auth0.domain),
        ),
        ("auth0ClientId".to_owned(), obj.spec.auth0.client_id.clone()),
    ]);
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace),
            owner_references: obj.controller_owner_ref(&()).map(|r| vec![r]),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                "authedapi".to_owned(),
            )])),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    let before = api.get_opt(&name).await?;
    if let Some(existing) = &before
        && !existing
            .owner_references()
            .iter()
            .any(|r| Some(&r.uid) == obj.meta().uid.as_ref())
    {
        return Err(Error::NameConflict(format!(
            "ConfigMap {name} exists and is not owned by this AuthedApi: it was left alone; \
             choose another spec.outputs.configMapName"
        )));
    }
    if before.as_ref().and_then(|c| c.data.as_ref()) != config_map.data.as_ref() {
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&config_map),
        )
        .await?;
        let verb = if before.is_some() {
            "Updated"
        } else {
            "Created"
        };
        step.event(
            verb,
            "WriteOutputs",
            format!("{verb} ConfigMap {name} with the API's endpoint and identity pool"),
        )
        .await;
    }
    step.writer.status.outputs_config_map = Some(name);
    Ok(())
}

/// Delete the outputs ConfigMap of a deleted object.
pub async fn delete_for(obj: &AuthedApi, client: &kube::Client) -> Result<(), Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let names = obj
        .status
        .as_ref()
        .and_then(|s| s.outputs_config_map.clone())
        .into_iter()
        .chain(obj.spec.outputs.as_ref().map(|o| o.config_map_name.clone()));
    for name in names {
        if let Some(existing) = api.get_opt(&name).await?
            && existing
                .owner_references()
                .iter()
                .any(|r| Some(&r.uid) == obj.meta().uid.as_ref())
        {
            delete(&api, &name).await?;
        }
    }
    Ok(())
}

async fn delete(api: &Api<ConfigMap>, name: &str) -> Result<(), Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
