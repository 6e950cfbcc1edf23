//! Tags: the operator's own on every resource, the organisation's (operator-wide and
//! spec.tags) merged under them, and the checks AWS would make of them.

use std::collections::{BTreeMap, BTreeSet};

use super::{Identity, PlanError};
use crate::api::AuthedApiSpec;

/// Tag keys every taggable resource carries.
pub const TAG_OWNER: &str = "authedapi.dev/owner";
pub const TAG_UID: &str = "authedapi.dev/uid";
pub const TAG_STAGE: &str = "authedapi.dev/stage";
pub const TAG_CLUSTER: &str = "authedapi.dev/cluster";
/// On a shared OIDC provider: set when authedapi created it (so it may delete it).
pub const TAG_MANAGED_BY: &str = "authedapi.dev/managed-by";
pub const MANAGED_BY: &str = "authedapi";

/// AWS's longest tag value (IAM, API Gateway, Cognito).
pub const TAG_VALUE_MAX: usize = 256;
/// AWS's longest tag key.
pub const TAG_KEY_MAX: usize = 128;
/// The most tags AWS allows on one resource (IAM, API Gateway, Cognito).
pub const TAGS_MAX: usize = 50;
/// The tags the operator puts on every resource of an object (owner, uid, stage, cluster).
pub const OUR_TAGS: usize = 4;
/// The prefix of the operator's own tag keys.
pub const OUR_TAG_PREFIX: &str = "authedapi.dev/";

/// Whether `key` is reserved: the operator's own (`authedapi.dev/...`) or AWS's (`aws:...`),
/// in any case (IAM compares tag keys without case).
pub fn reserved_tag_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.starts_with(OUR_TAG_PREFIX) || lower.starts_with("aws:")
}

/// Whether `c` is a character AWS allows in tags: a letter, a digit, a space separator or
/// one of `_.:/=+-@` (IAM's `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, the narrowest of the services).
fn tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || "_.:/=+-@".contains(c)
}

/// Why AWS (or the operator) would refuse the organisation's tag `key`=`value`, if it would.
pub fn check_tag(key: &str, value: &str) -> Result<(), String> {
    let length = key.chars().count();
    if length == 0 || length > TAG_KEY_MAX {
        return Err(format!(
            "tag key {key:?}: keys are 1 to {TAG_KEY_MAX} characters"
        ));
    }
    if reserved_tag_key(key) {
        return Err(format!(
            "tag key {key:?}: keys starting with {OUR_TAG_PREFIX} are the operator's own and \
             keys starting with aws: are AWS's; neither can be set"
        ));
    }
    if !key.chars().all(tag_char) {
        return Err(format!(
            "tag key {key:?}: use only letters, digits, spaces and _.:/=+-@"
        ));
    }
    if value.chars().count() > TAG_VALUE_MAX {
        return Err(format!(
            "tag {key}: values are at most {TAG_VALUE_MAX} characters"
        ));
    }
    if !value.chars().all(tag_char) {
        return Err(format!(
            "tag {key}: use only letters, digits, spaces and _.:/=+-@ in the value"
        ));
    }
    Ok(())
}

/// The tags of every resource of an object: the operator-wide `resource_tags`, then
/// `spec_tags` over them (a spec key replaces an operator-wide key that differs only in
/// case: IAM holds one of them), then the operator's own over everything. Returns the
/// tags and the keys that are the organisation's (not the operator's own).
pub fn merge_tags(
    resource_tags: &BTreeMap<String, String>,
    spec_tags: &BTreeMap<String, String>,
    ours: BTreeMap<String, String>,
) -> Result<(BTreeMap<String, String>, BTreeSet<String>), PlanError> {
    for (key, value) in resource_tags {
        check_tag(key, value).map_err(|e| PlanError(format!("--resource-tags: {e}")))?;
    }
    for (key, value) in spec_tags {
        check_tag(key, value).map_err(|e| PlanError(format!("spec.tags: {e}")))?;
    }
    let mut tags: BTreeMap<String, String> = resource_tags
        .iter()
        .filter(|(key, _)| {
            !spec_tags
                .keys()
                .any(|spec_key| spec_key.eq_ignore_ascii_case(key))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags.extend(spec_tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    let keys: BTreeSet<String> = tags.keys().cloned().collect();
    tags.extend(ours);
    if tags.len() > TAGS_MAX {
        return Err(PlanError(format!(
            "spec.tags ({}) and the operator's --resource-tags ({}) make {} tags with the \
             operator's own {OUR_TAGS}; AWS allows {TAGS_MAX} per resource: remove {} from spec.tags",
            spec_tags.len(),
            resource_tags.len(),
            tags.len(),
            tags.len() - TAGS_MAX
        )));
    }
    Ok((tags, keys))
}

/// The tags of every resource of the object `who` (see [`merge_tags`]) and the keys of them
/// that are the organisation's.
pub(super) fn object_tags(
    spec: &AuthedApiSpec,
    who: &Identity<'_>,
    resource_tags: &BTreeMap<String, String>,
) -> Result<(BTreeMap<String, String>, BTreeSet<String>), PlanError> {
    merge_tags(
        resource_tags,
        &spec.tags,
        BTreeMap::from([
            (TAG_OWNER.to_owned(), owner_tag(who.namespace, who.name)),
            (TAG_UID.to_owned(), who.uid.to_owned()),
            (TAG_STAGE.to_owned(), spec.stage.clone()),
            (TAG_CLUSTER.to_owned(), who.cluster_id.to_owned()),
        ]),
    )
}

/// The tags of a resource objects share (the OIDC provider, a domain) when this cluster
/// creates it: ownership and the operator-wide tags, never an object's spec.tags.
pub(super) fn shared_resource_tags(
    resource_tags: &BTreeMap<String, String>,
    cluster_id: &str,
) -> BTreeMap<String, String> {
    let mut tags = resource_tags.clone();
    tags.extend([
        (TAG_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
        (TAG_CLUSTER.to_owned(), cluster_id.to_owned()),
    ]);
    tags
}

/// "namespace/name", for people reading tags; cut to a tag value's limit (a name may be
/// 253 characters). The uid tag, not this one, says whose a resource is.
fn owner_tag(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
        .chars()
        .take(TAG_VALUE_MAX)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::test_support::*;

    #[test]
    fn tags_name_owner_uid_stage_and_cluster() {
        let p = seed_plan();
        assert_eq!(p.tags[TAG_OWNER], "default/api-auth-auth0");
        assert_eq!(p.tags[TAG_UID], "uid-1");
        assert_eq!(p.tags[TAG_STAGE], "dev");
        assert_eq!(p.tags[TAG_CLUSTER], "test");
        assert_eq!(p.oidc.tags[TAG_MANAGED_BY], MANAGED_BY);
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn spec_tags_win_over_the_operators_and_ours_over_both() {
        let org = tags(&[
            ("cost-center", "platform"),
            ("Team", "shared"),
            ("env", "x"),
        ]);
        let mut spec = seed();
        spec.tags = tags(&[("cost-center", "team-a"), ("team", "a")]);
        let me = who("default", "api-auth-auth0", "us-east-1");
        let p = plan_tagged(&spec, &me, &org).unwrap();
        assert_eq!(p.tags["cost-center"], "team-a");
        assert_eq!(p.tags["team"], "a");
        assert!(
            !p.tags.contains_key("Team"),
            "an operator-wide key differing only in case goes: {:?}",
            p.tags
        );
        assert_eq!(p.tags["env"], "x");
        assert_eq!(p.tags[TAG_UID], "uid-1");
        assert_eq!(p.tags.len(), 3 + OUR_TAGS);
        assert_eq!(
            p.tag_keys.iter().map(String::as_str).collect::<Vec<_>>(),
            vec!["cost-center", "env", "team"]
        );
        // The shared provider gets the operator-wide tags, never an object's.
        assert_eq!(p.oidc.tags["cost-center"], "platform");
        assert!(!p.oidc.tags.contains_key("team"));
        assert_eq!(p.oidc.tags[TAG_MANAGED_BY], MANAGED_BY);
    }

    #[test]
    fn ours_cannot_be_set_and_aws_limits_are_checked() {
        for key in [
            "authedapi.dev/uid",
            "AuthedApi.dev/owner",
            "aws:cloudformation",
            "AWS:x",
        ] {
            let mut spec = seed();
            spec.tags = tags(&[(key, "mine")]);
            let e = plan(&spec, &who("default", "x", "us-east-1")).unwrap_err();
            assert!(e.0.contains("spec.tags") && e.0.contains(key), "{key}: {e}");
        }
        let long_key = "k".repeat(129);
        let long_value = "v".repeat(257);
        for (key, value) in [
            (long_key.as_str(), "v"),
            ("k", long_value.as_str()),
            ("", "v"),
            ("a,b", "v"),
            ("k", "semi;colon"),
        ] {
            assert!(check_tag(key, value).is_err(), "{key:?}={value:?}");
        }
        assert!(check_tag("Cost Center", "Team A: ünïcode/+=@-_.").is_ok());
        assert!(check_tag(&"k".repeat(128), &"v".repeat(256)).is_ok());
        assert!(check_tag("k", "").is_ok(), "an empty value is a value");
        // 50 in all, counting ours: 46 of the organisation's fit, 47 do not.
        let mut spec = seed();
        spec.tags = (0..46).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert_eq!(
            plan(&spec, &who("default", "x", "us-east-1"))
                .unwrap()
                .tags
                .len(),
            TAGS_MAX
        );
        let org = tags(&[("one-more", "v")]);
        let e = plan_tagged(&spec, &who("default", "x", "us-east-1"), &org).unwrap_err();
        assert!(e.0.contains("51 tags") && e.0.contains("remove 1"), "{e}");
    }
}
