//! Reconcile now, as Flux's `reconcile.fluxcd.io/requestedAt`: a new value of the
//! annotation [`RECONCILE_REQUESTED`] asks for one reconcile (a drift check of a Ready
//! object) at once instead of at the next resync. It still waits for its account's drift
//! share like any drift check, so requests can never spend more of API Gateway's quota
//! than the resync would. The value handled last is kept in status
//! (`lastHandledReconcileAt`), so a request is handled once.

use kube::ResourceExt;

use crate::api::AuthedApi;

/// Annotation: any new value (a timestamp, say) asks for a reconcile now.
pub const RECONCILE_REQUESTED: &str = "authedapi.dev/reconcile-requested-at";

/// The request `obj` carries that is not handled yet: its value, unless status (or this
/// process, whose status write the cache may not show yet) says it was handled.
pub fn pending<'o>(obj: &'o AuthedApi, handled_here: Option<&str>) -> Option<&'o str> {
    let value = obj.annotations().get(RECONCILE_REQUESTED)?.as_str();
    let handled = obj
        .status
        .as_ref()
        .and_then(|s| s.last_handled_reconcile_at.as_deref());
    (handled != Some(value) && handled_here != Some(value)).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AuthedApiStatus;

    fn object(requested: Option<&str>, handled: Option<&str>) -> AuthedApi {
        let mut obj: AuthedApi = serde_json::from_value(serde_json::json!({
            "apiVersion": "authedapi.dev/v1alpha1", "kind": "AuthedApi",
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"stage": "dev", "oidc": {"issuer": "https://i/", "clientId": "c"},
                     "routes": [{"route": "GET /", "target": {"http": {"url": "https://e/"}}}]}
        }))
        .unwrap();
        if let Some(value) = requested {
            obj.annotations_mut()
                .insert(RECONCILE_REQUESTED.into(), value.into());
        }
        obj.status = Some(AuthedApiStatus {
            last_handled_reconcile_at: handled.map(str::to_owned),
            ..Default::default()
        });
        obj
    }

    #[test]
    fn no_annotation_is_no_request() {
        assert_eq!(pending(&object(None, Some("t1")), None), None);
    }

    #[test]
    fn a_value_not_handled_yet_is_a_request() {
        assert_eq!(pending(&object(Some("t1"), None), None), Some("t1"));
        assert_eq!(pending(&object(Some("t2"), Some("t1")), None), Some("t2"));
    }

    #[test]
    fn a_value_handled_in_status_or_by_this_process_is_not() {
        assert_eq!(pending(&object(Some("t1"), Some("t1")), None), None);
        assert_eq!(pending(&object(Some("t1"), None), Some("t1")), None);
    }
}
