//! The pause annotation and observe-only mode.

use super::*;

fn annotate(obj: &mut AuthedApi, key: &str) {
    obj.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(key.into(), "true".into());
}

#[tokio::test]
async fn a_paused_object_makes_no_aws_call_at_all_and_says_so_once() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let saved_before = rig.cluster.statuses.lock().unwrap().len();
    annotate(&mut obj, PAUSED);
    obj.spec.routes.pop();
    obj.metadata.generation = Some(2);
    for _ in 0..2 {
        let requeue = reconcile(Arc::new(obj.clone()), rig.ctx.clone())
            .await
            .unwrap();
        assert_eq!(requeue, Requeue::await_change());
        obj.status = Some(rig.cluster.last_status());
    }
    let s = rig.aws.state();
    assert_eq!(
        (s.writes_total(), s.reads.len()),
        (0, 0),
        "{:?} {:?}",
        s.writes,
        s.reads
    );
    let status = obj.status.unwrap();
    assert!(status::is_paused(&status.conditions));
    assert!(
        status::is_ready(&status.conditions, 1),
        "Ready still describes generation 1"
    );
    assert_eq!(
        rig.cluster.statuses.lock().unwrap().len(),
        saved_before + 1,
        "one status write, for the condition"
    );
    let paused: Vec<_> = rig
        .cluster
        .events()
        .into_iter()
        .filter(|e| e.reason == "Paused")
        .collect();
    assert_eq!(paused.len(), 1);
}

#[tokio::test]
async fn observe_only_writes_nothing_and_lists_what_it_would_do() {
    let rig = Rig::new();
    let mut obj = seed();
    annotate(&mut obj, OBSERVE_ONLY);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.aws.state().writes_total(), 0);
    let status = obj.status.unwrap();
    assert!(status.api_id.is_none());
    assert_eq!(
        status.planned_changes,
        vec![
            "CreateOpenIDConnectProvider: Created OIDC provider https://tenant.us.auth0.com",
            "CreateApi: Created the HTTP API",
        ]
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ObserveOnly")
    );
    assert!(
        status.conditions.iter().all(|c| c.type_ == "Ready"),
        "neither reconciling nor stalled"
    );
    let would: Vec<_> = rig
        .cluster
        .events()
        .into_iter()
        .filter(|e| e.reason == "WouldChange")
        .collect();
    assert_eq!(would.len(), 2);
    assert_eq!(would[1].action, "Reconcile CreateApi");
}

#[tokio::test]
async fn observe_only_on_a_drifted_object_shows_the_diff_and_corrects_nothing() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let id = rig.api_id();
    rig.aws
        .state()
        .api(&id)
        .unwrap()
        .routes
        .retain(|r| r.key != "GET /public");
    annotate(&mut obj, OBSERVE_ONLY);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.aws.state().writes_total(), 0);
    assert_eq!(
        obj.status.as_ref().unwrap().planned_changes,
        vec!["CreateRoute GET /public: Created route GET /public (NONE)"]
    );
    // Without the annotation, the same diff is applied and the list empties.
    obj.metadata.annotations = None;
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(names(&rig.writes()), vec!["CreateRoute"]);
    let status = obj.status.unwrap();
    assert!(status.planned_changes.is_empty());
    assert!(status::is_ready(&status.conditions, 1));
}

#[tokio::test]
async fn observe_only_on_a_matching_object_is_ready() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    annotate(&mut obj, OBSERVE_ONLY);
    rig.reconcile(&mut obj).await.unwrap();
    let status = obj.status.unwrap();
    assert!(status.planned_changes.is_empty());
    assert!(status::is_ready(&status.conditions, 1));
}

#[tokio::test]
async fn deleting_an_observe_only_object_leaves_aws_alone() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    annotate(&mut obj, OBSERVE_ONLY);
    rig.delete(&obj).await.unwrap();
    assert_eq!(rig.aws.state().writes_total(), 0);
    assert_eq!(rig.aws.state().apis.len(), 1);
}

#[tokio::test]
async fn observe_only_lists_the_vpc_link_before_the_api_and_writes_nothing() {
    let rig = Rig::new();
    let mut obj = super::vpc_links::private(super::vpc_links::owned_link());
    annotate(&mut obj, OBSERVE_ONLY);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.aws.state().writes_total(), 0);
    let planned: Vec<String> = obj
        .status
        .unwrap()
        .planned_changes
        .iter()
        .map(|c| c.split(':').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        planned,
        ["CreateOpenIDConnectProvider", "CreateVpcLink", "CreateApi"]
    );
}
