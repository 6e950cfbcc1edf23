//! The organisation's tags (spec.tags over the operator's --resource-tags, the operator's
//! own over both) on every kind: set at creation, changed and removed where the kind can
//! (roles, the pool), reported where it cannot (the API and its stage), never ours.

use super::*;

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The seed with `spec.tags`.
fn tagged(spec_tags: &[(&str, &str)]) -> AuthedApi {
    let mut obj = seed();
    obj.spec.tags = tags(spec_tags);
    obj
}

/// The operator-wide tags of these tests.
fn org() -> BTreeMap<String, String> {
    tags(&[("cost-center", "platform"), ("env", "prod")])
}

/// Every tagged resource of the object, by what it is: the API, its stage, the pool and
/// each role.
fn resources(rig: &Rig) -> Vec<(String, BTreeMap<String, String>)> {
    let s = rig.aws.state();
    let mut found = Vec::new();
    for api in s.apis.values() {
        found.push(("HTTP API".to_owned(), api.api.tags.clone()));
        let stage = api.stage.as_ref().expect("the $default stage");
        found.push(("stage".to_owned(), stage.tags.clone()));
    }
    for pool in s.pools.values() {
        found.push(("identity pool".to_owned(), pool.tags.clone()));
    }
    for (name, role) in &s.roles {
        found.push((format!("role {name}"), role.tags.clone()));
    }
    found
}

fn warnings(rig: &Rig) -> Vec<Published> {
    rig.cluster
        .events()
        .into_iter()
        .filter(|e| e.warning && e.reason == "TagsDrifted")
        .collect()
}

#[tokio::test]
async fn the_organisations_tags_are_on_every_kind_at_creation_and_spec_tags_win() {
    let rig = Rig::with_resource_tags(org());
    let mut obj = tagged(&[("team", "a"), ("cost-center", "team-a")]);
    rig.reconcile(&mut obj).await.unwrap();
    let found = resources(&rig);
    assert_eq!(found.len(), 5, "API, stage, pool, two roles: {found:?}");
    for (what, tags) in &found {
        assert_eq!(tags.get("team").map(String::as_str), Some("a"), "{what}");
        assert_eq!(
            tags.get("cost-center").map(String::as_str),
            Some("team-a"),
            "{what}: spec.tags win over --resource-tags"
        );
        assert_eq!(tags.get("env").map(String::as_str), Some("prod"), "{what}");
        assert_eq!(tags.get(plan::TAG_UID).map(String::as_str), Some("uid-1"));
        assert_eq!(
            tags.get(plan::TAG_CLUSTER).map(String::as_str),
            Some("test")
        );
        assert_eq!(tags.len(), 3 + plan::OUR_TAGS, "{what}: {tags:?}");
    }
    // The shared provider: the operator-wide tags only, never an object's.
    let provider = rig.aws.state().providers.values().next().cloned().unwrap();
    assert_eq!(
        provider.tags.get("cost-center").map(String::as_str),
        Some("platform")
    );
    assert_eq!(provider.tags.get("env").map(String::as_str), Some("prod"));
    assert!(!provider.tags.contains_key("team"), "{:?}", provider.tags);
    let status = obj.status.unwrap();
    assert_eq!(status.tag_keys, vec!["cost-center", "env", "team"]);
    assert!(status::is_ready(&status.conditions, 1));
    assert!(warnings(&rig).is_empty());
}

#[tokio::test]
async fn a_changed_tag_is_set_on_roles_and_pool_and_reported_on_the_api_and_stage() {
    let rig = Rig::with_resource_tags(org());
    let mut obj = tagged(&[("team", "a")]);
    rig.ready(&mut obj).await;
    obj.spec.tags = tags(&[("team", "b")]);
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    let writes = rig.writes();
    assert_eq!(writes.get("TagRole"), Some(&2), "{writes:?}");
    assert_eq!(writes.get("UpdateIdentityPool"), Some(&1), "{writes:?}");
    assert_eq!(
        writes.keys().copied().collect::<Vec<_>>(),
        vec!["TagRole", "UpdateIdentityPool"]
    );
    for (what, tags) in resources(&rig) {
        let expected = if what == "HTTP API" || what == "stage" {
            "a"
        } else {
            "b"
        };
        assert_eq!(tags["team"], expected, "{what}");
        assert_eq!(tags["env"], "prod", "{what}");
    }
    // API Gateway keeps its tags: the change is reported, with the command that makes it.
    let reported = warnings(&rig);
    assert_eq!(reported.len(), 2, "{reported:?}");
    for warning in &reported {
        assert!(
            warning.note.contains("lacks the tags team=b")
                && warning.note.contains("aws apigatewayv2 tag-resource"),
            "{}",
            warning.note
        );
    }
    assert!(status::is_ready(&obj.status.unwrap().conditions, 2));
}

#[tokio::test]
async fn a_removed_tag_leaves_roles_and_pool_once_and_is_reported_on_the_api_and_stage() {
    let rig = Rig::with_resource_tags(org());
    let mut obj = tagged(&[("team", "a"), ("project", "x")]);
    rig.ready(&mut obj).await;
    // Someone else's tag on a role stays.
    rig.aws
        .state()
        .roles
        .values_mut()
        .next()
        .unwrap()
        .tags
        .insert("owner-team".into(), "security".into());
    obj.spec.tags = tags(&[("project", "x")]);
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(
        rig.writes(),
        BTreeMap::from([("UntagResource", 1), ("UntagRole", 2)])
    );
    for (what, tags) in resources(&rig) {
        let api_gateway = what == "HTTP API" || what == "stage";
        assert_eq!(tags.contains_key("team"), api_gateway, "{what}: {tags:?}");
        assert_eq!(tags["project"], "x", "{what}");
        assert_eq!(tags["cost-center"], "platform", "{what}");
    }
    assert!(
        rig.aws
            .state()
            .roles
            .values()
            .any(|r| r.tags.get("owner-team").map(String::as_str) == Some("security"))
    );
    let reported = warnings(&rig);
    assert_eq!(reported.len(), 2, "{reported:?}");
    for warning in &reported {
        assert!(
            warning.note.contains("carries the tags team")
                && warning.note.contains("aws apigatewayv2 untag-resource")
                && warning.note.contains("--tag-keys team"),
            "{}",
            warning.note
        );
    }
    let status = obj.status.clone().unwrap();
    assert_eq!(status.tag_keys, vec!["cost-center", "env", "project"]);
    assert!(status::is_ready(&status.conditions, 2));

    // Done: the next reconcile has nothing to remove and nothing to report.
    rig.clear_counts();
    rig.cluster.events.lock().unwrap().clear();
    rig.reconcile(&mut obj).await.unwrap();
    assert!(rig.writes().is_empty(), "{:?}", rig.writes());
    assert!(warnings(&rig).is_empty());
}

#[tokio::test]
async fn an_operator_wide_tag_dropped_from_the_flag_leaves_roles_and_pool() {
    let first = Rig::with_resource_tags(org());
    let mut obj = tagged(&[]);
    first.ready(&mut obj).await;
    // The operator restarts with --resource-tags env=prod only, on the same AWS.
    let rig = Rig::with_resource_tags(tags(&[("env", "prod")]));
    *rig.aws.state() = std::mem::take(&mut *first.aws.state());
    rig.clear_counts();
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(
        rig.writes(),
        BTreeMap::from([("UntagResource", 1), ("UntagRole", 2)])
    );
    assert_eq!(obj.status.unwrap().tag_keys, vec!["env"]);
}

#[tokio::test]
async fn a_tag_key_is_recorded_before_any_resource_gets_it() {
    let rig = Rig::new();
    let mut obj = tagged(&[("team", "a")]);
    // The reconcile fails after the pool got the tag, before status could say it synced.
    rig.aws.fail_next(Call::CreateRole, ErrorKind::Invalid);
    assert!(rig.reconcile(&mut obj).await.is_err());
    let pool_tags = rig.aws.state().pools.values().next().unwrap().tags.clone();
    assert_eq!(pool_tags["team"], "a");
    assert_eq!(obj.status.as_ref().unwrap().tag_keys, vec!["team"]);
    // The spec drops it before any reconcile succeeded: it is still known to be ours.
    obj.spec.tags.clear();
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    let pool_tags = rig.aws.state().pools.values().next().unwrap().tags.clone();
    assert!(!pool_tags.contains_key("team"), "{pool_tags:?}");
    assert!(obj.status.unwrap().tag_keys.is_empty());
}

#[tokio::test]
async fn ours_cannot_be_set_or_overridden_by_spec_tags() {
    for key in [
        "authedapi.dev/uid",
        "Authedapi.Dev/cluster",
        "aws:createdBy",
    ] {
        let rig = Rig::new();
        let mut obj = tagged(&[(key, "mine")]);
        assert!(rig.reconcile(&mut obj).await.is_err());
        let status = obj.status.unwrap();
        let (stalled, reason, message) = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled")
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
            .unwrap();
        assert_eq!((stalled.as_str(), reason.as_str()), ("True", "InvalidSpec"));
        assert!(
            message.contains(key) && message.contains("spec.tags"),
            "{message}"
        );
        assert_eq!(rig.aws.state().writes_total(), 0, "{key}: nothing made");
    }
}

#[tokio::test]
async fn too_many_tags_with_the_operators_stall_before_any_write_and_still_delete() {
    let rig = Rig::with_resource_tags(tags(&[("env", "prod")]));
    let mut obj = seed();
    rig.ready(&mut obj).await;
    obj.spec.tags = (0..46).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    obj.metadata.generation = Some(2);
    assert!(rig.reconcile(&mut obj).await.is_err());
    assert!(rig.writes().is_empty(), "{:?}", rig.writes());
    let stalled = obj
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .cloned()
        .unwrap();
    assert_eq!(stalled.reason, "InvalidSpec");
    assert!(
        stalled.message.contains("51 tags") && stalled.message.contains("50 per resource"),
        "{}",
        stalled.message
    );
    rig.delete(&obj).await.unwrap();
    let s = rig.aws.state();
    assert!(s.apis.is_empty() && s.pools.is_empty() && s.roles.is_empty());
}

#[tokio::test]
async fn observe_only_lists_the_tag_changes_and_makes_none() {
    let rig = Rig::new();
    let mut obj = tagged(&[("team", "a")]);
    rig.ready(&mut obj).await;
    obj.spec.tags = tags(&[("project", "x")]);
    obj.metadata.generation = Some(2);
    obj.metadata
        .annotations
        .get_or_insert_default()
        .insert(OBSERVE_ONLY.into(), "true".into());
    rig.reconcile(&mut obj).await.unwrap();
    assert!(rig.writes().is_empty(), "{:?}", rig.writes());
    let planned = obj.status.unwrap().planned_changes;
    assert!(
        planned
            .iter()
            .any(|p| p.starts_with("UntagRole ") && p.contains("team")),
        "{planned:?}"
    );
    assert!(
        planned.iter().any(|p| p.starts_with("UntagResource:")),
        "{planned:?}"
    );
    assert!(
        planned.iter().any(|p| p.starts_with("TagRole ")),
        "{planned:?}"
    );
}
