//! The custom domain of an object: the shared domain name and this object's mapping on
//! it, in turn with the other objects on that domain (see [`kinds::domain_name`]).
//! `status.domain` names the domain in use before anything is created on it, so a crash
//! never leaves a mapping behind that a later release would not find.

use super::Error;
use super::driver::{Driver, Mode};
use super::kinds::{self, api_mapping::ApiMappingKind, domain_name};
use crate::api::DomainStatus;
use crate::plan::PlanError;

fn lock_key(name: &str) -> String {
    format!("domain/{name}")
}

/// Make the spec's domain exist and map this object's API (`api_id`) on it; release the
/// one status names if the spec moved away from it.
pub async fn sync_domain(d: &mut Driver<'_>, api_id: &str) -> Result<(), Error> {
    let plan = d.plan;
    let ctx = d.ctx;
    let wanted = plan.domain.as_ref();
    let recorded = d.status.domain.as_ref().map(|s| s.name.clone());
    if let Some(old) = recorded.filter(|old| wanted.is_none_or(|w| w.name != *old)) {
        release_domain(d, &old, Some(api_id)).await?;
        d.record(|status| status.domain = None).await?;
    }
    let Some(domain) = wanted else {
        return Ok(());
    };
    let _turn = ctx.lock_shared(&lock_key(&domain.name)).await;
    {
        let others = ctx.store.state();
        let users = domain_name::users(&others, d.uid(), &domain.name);
        if let Some(why) = domain_name::certificate_disagreement(&users, &domain.certificate_arn) {
            return Err(Error::InvalidSpec(PlanError(why)));
        }
    }
    d.record(|status| {
        if status.domain.is_none() {
            status.domain = Some(DomainStatus {
                name: domain.name.clone(),
                ..Default::default()
            });
        }
    })
    .await?;
    let found = d
        .ensure(
            &domain_name::DomainNameKind {
                name: &domain.name,
                cluster_id: &ctx.cluster_id,
            },
            &domain_name::Wanted::InUse(domain.clone()),
        )
        .await?;
    let mappings = d
        .ensure(
            &ApiMappingKind {
                domain: &domain.name,
                api_id: Some(api_id),
            },
            &Some(domain.base_path.clone()),
        )
        .await?;
    if d.mode == Mode::Act {
        let aws = found.domain.unwrap_or_default();
        d.status.domain = Some(DomainStatus {
            name: domain.name.clone(),
            url: Some(domain.url()),
            target_domain_name: Some(aws.target).filter(|t| !t.is_empty()),
            hosted_zone_id: Some(aws.hosted_zone_id).filter(|z| !z.is_empty()),
            api_mapping_id: mappings.first().map(|m| m.id.clone()),
        });
    }
    Ok(())
}

/// Remove this object's mappings (of `api_id`) from the domain `name`, and the domain
/// with them if it is ours, no other object uses it and no mapping is left on it.
pub async fn release_domain(
    d: &mut Driver<'_>,
    name: &str,
    api_id: Option<&str>,
) -> Result<(), Error> {
    let ctx = d.ctx;
    let _turn = ctx.lock_shared(&lock_key(name)).await;
    d.ensure(
        &ApiMappingKind {
            domain: name,
            api_id,
        },
        &None,
    )
    .await?;
    let used_by_others = !domain_name::users(&ctx.store.state(), d.uid(), name).is_empty();
    d.ensure(
        &kinds::domain_name::DomainNameKind {
            name,
            cluster_id: &ctx.cluster_id,
        },
        &domain_name::Wanted::Released { used_by_others },
    )
    .await?;
    Ok(())
}
