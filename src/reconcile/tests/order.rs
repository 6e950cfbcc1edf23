//! One declared order: sync ensures the kinds in `kinds::REGISTERED`'s order, cleanup in
//! the reverse (the crash tests read the same list).

use super::domains::{issued, known, on_domain};
use super::*;

#[tokio::test]
async fn sync_follows_the_registered_order_and_cleanup_reverses_it() {
    let mut rig = Rig::new();
    issued(&rig);
    let mut obj = with_lambda_authorizer(on_domain("a", "uid-a", "v1"));
    let with_link = super::vpc_links::private(super::vpc_links::owned_link());
    obj.spec.vpc_link = with_link.spec.vpc_link;
    obj.spec.routes.extend(
        with_link
            .spec
            .routes
            .into_iter()
            .filter(|r| r.target.private.is_some()),
    );
    known(&mut rig, obj.clone());
    let placed = prepare(&obj, &rig.ctx).await.expect("placed");
    let (aws, plan) = (&placed.aws, &placed.plan);

    let mut d = Driver::new(aws, plan, &obj, &rig.ctx, Default::default(), Mode::Act);
    sync::sync(&mut d).await.expect("sync");
    let synced = d.visited().to_vec();
    assert_eq!(synced.len(), kinds::REGISTERED.len(), "{synced:?}");
    assert!(
        kinds::follows(&synced, kinds::REGISTERED.iter().copied()),
        "{synced:?}"
    );

    // Each create a kind declares is the call AWS (here the fake) knows by that name.
    let writes = rig.writes();
    for call in kinds::creates() {
        assert!(
            writes.contains_key(call.to_string().as_str()),
            "{call} {writes:?}"
        );
    }

    let mut d = Driver::new(aws, plan, &obj, &rig.ctx, d.status, Mode::Act);
    cleanup::delete_all(&mut d, true).await.expect("cleanup");
    let deleted = d.visited().to_vec();
    assert!(deleted.len() >= 6, "{deleted:?}");
    assert!(
        kinds::follows(&deleted, kinds::REGISTERED.iter().rev().copied()),
        "{deleted:?}"
    );
    assert!(rig.aws.state().apis.is_empty());
    assert!(rig.aws.state().vpc_links.is_empty());
}
