//! `reconcile` as the controller calls it, finalizer included: added before any AWS call,
//! removed only once the AWS resources are gone; a paused object keeps it, deleted or not.

use super::*;

/// One finalizer patch as the API server saw it: its body, and how many HTTP APIs the
/// fake AWS held at that moment.
#[derive(Clone, Debug)]
struct Patch {
    body: String,
    apis: usize,
}

/// A rig whose API server answers every request with `seed()` and records each patch.
fn answering() -> (Rig, Arc<Mutex<Vec<Patch>>>) {
    let (service, mut api_server) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let rig = Rig::with_client(kube::Client::new(service, "default"), BTreeMap::new());
    let patches = Arc::new(Mutex::new(Vec::new()));
    let (seen, aws) = (patches.clone(), rig.aws.clone());
    tokio::spawn(async move {
        while let Some((request, reply)) = api_server.next_request().await {
            assert_eq!(request.method(), http::Method::PATCH, "{}", request.uri());
            let body = request.into_body().collect_bytes().await.unwrap();
            seen.lock().unwrap().push(Patch {
                body: String::from_utf8_lossy(&body).into_owned(),
                apis: aws.state().apis.len(),
            });
            let answer = serde_json::to_vec(&seed()).unwrap();
            reply.send_response(
                http::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(answer))
                    .unwrap(),
            );
        }
    });
    (rig, patches)
}

fn deleting(obj: &mut AuthedApi) {
    obj.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
}

#[tokio::test]
async fn the_finalizer_comes_before_any_aws_call_and_goes_after_the_last_delete() {
    let (rig, patches) = answering();
    let mut obj = seed();

    let requeue = reconcile(Arc::new(obj.clone()), rig.ctx.clone())
        .await
        .unwrap();
    assert_eq!(requeue, Requeue::await_change());
    let added = patches.lock().unwrap().clone();
    assert_eq!(added.len(), 1, "{added:?}");
    assert!(
        added[0].body.contains(r#""op":"add""#) && added[0].body.contains(FINALIZER),
        "{added:?}"
    );
    assert_eq!(rig.aws.state().writes_total(), 0, "no AWS call before it");

    obj.metadata.finalizers = Some(vec![FINALIZER.into()]);
    reconcile(Arc::new(obj.clone()), rig.ctx.clone())
        .await
        .unwrap();
    obj.status = Some(rig.cluster.last_status());
    assert!(status::is_ready(
        &obj.status.as_ref().unwrap().conditions,
        1
    ));
    assert_eq!(rig.aws.state().apis.len(), 1);
    assert_eq!(patches.lock().unwrap().len(), 1, "the finalizer stays");

    deleting(&mut obj);
    reconcile(Arc::new(obj.clone()), rig.ctx.clone())
        .await
        .unwrap();
    let all = patches.lock().unwrap().clone();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[1].body.contains(r#""op":"remove""#), "{all:?}");
    assert_eq!(all[1].apis, 0, "removed once the API is gone: {all:?}");
}

#[tokio::test]
async fn a_paused_object_being_deleted_keeps_its_finalizer_and_its_aws_resources() {
    let (rig, patches) = answering();
    let mut obj = seed();
    obj.metadata.finalizers = Some(vec![FINALIZER.into()]);
    rig.ready(&mut obj).await;
    obj.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(PAUSED.into(), "true".into());
    deleting(&mut obj);

    let requeue = reconcile(Arc::new(obj.clone()), rig.ctx.clone())
        .await
        .unwrap();
    assert_eq!(requeue, Requeue::await_change());
    assert!(patches.lock().unwrap().is_empty());
    let s = rig.aws.state();
    assert_eq!((s.writes_total(), s.apis.len()), (0, 1), "{:?}", s.writes);
}
