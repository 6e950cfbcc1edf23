//! AWS names of an object's resources: readable (stage, namespace, name), cut to each
//! service's limit, and always ending with a hash so two objects never share one.

use sha2::{Digest, Sha256};

use super::Identity;

/// The names of an object's own resources, and the readable part and hash they share.
pub(super) struct ObjectNames {
    /// Short hash of namespace/name/stage.
    pub hash: String,
    /// "stage-namespace-name", before cutting.
    pub base: String,
    pub api: String,
    pub identity_pool: String,
    pub role: String,
}

impl ObjectNames {
    pub(super) fn of(stage: &str, who: &Identity<'_>) -> Self {
        let hash = short_hash(&format!("{}/{}/{stage}", who.namespace, who.name));
        let base = format!("{stage}-{}-{}", who.namespace, who.name);
        ObjectNames {
            api: with_hash(&base, '-', &hash, API_NAME_MAX),
            identity_pool: with_hash(&pool_safe(&base), '_', &hash, POOL_NAME_MAX),
            role: with_hash(&base, '-', &hash, ROLE_NAME_MAX),
            hash,
            base,
        }
    }
}

/// The role name of access rule `rule` of the object `who` (`base`: its
/// "stage-namespace-name"): cut to fit, the rule's name and a hash of all four.
pub(super) fn rule_role_name(base: &str, who: &Identity<'_>, stage: &str, rule: &str) -> String {
    let rule_hash = short_hash(&format!("{}/{}/{stage}/{rule}", who.namespace, who.name));
    let room = ROLE_NAME_MAX - HASH_LEN - rule.len() - 2;
    let cut: String = base.chars().take(room).collect();
    format!("{}-{rule}-{rule_hash}", cut.trim_end_matches(['-', '.']))
}

/// AWS name limits.
const API_NAME_MAX: usize = 128;
const POOL_NAME_MAX: usize = 128;
const ROLE_NAME_MAX: usize = 64;
const HASH_LEN: usize = 8;

pub(super) fn short_hash(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    digest
        .iter()
        .take(HASH_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `base` cut to fit `max` with `sep` + `hash` appended. The hash is always there: stage,
/// namespace and name may all contain '-', so the readable part alone can collide.
fn with_hash(base: &str, sep: char, hash: &str, max: usize) -> String {
    let room = max - hash.len() - 1;
    let cut: String = base.chars().take(room).collect();
    let cut = cut.trim_end_matches(['-', '_', '.']);
    format!("{cut}{sep}{hash}")
}

/// Identity pool names allow only word characters and spaces.
fn pool_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::plan::test_support::*;

    #[test]
    fn names_are_stage_prefixed_and_carry_the_hash() {
        let p = seed_plan();
        assert_eq!(p.hash.len(), 8);
        assert_eq!(p.api_name, format!("dev-default-api-auth-auth0-{}", p.hash));
        assert_eq!(
            p.role_name,
            format!("dev-default-api-auth-auth0-{}", p.hash)
        );
        assert_eq!(
            p.identity_pool_name,
            format!("dev_default_api_auth_auth0_{}", p.hash)
        );
        assert_eq!(p.permission_sid, format!("authedapi-{}", p.hash));
    }

    #[test]
    fn long_names_are_cut_to_the_aws_limits_and_stay_unique() {
        let long = "a".repeat(253);
        let one = plan(
            &seed(),
            &who("team-with-a-long-namespace-name", &long, "us-east-1"),
        )
        .unwrap();
        let two = plan(
            &seed(),
            &who(
                "team-with-a-long-namespace-name",
                &format!("{long}b"),
                "us-east-1",
            ),
        )
        .unwrap();
        assert_eq!(one.role_name.len(), 64);
        assert!(one.api_name.len() <= 128);
        assert!(one.identity_pool_name.len() <= 128);
        assert_ne!(one.role_name, two.role_name);
        assert!(
            one.role_name
                .starts_with("dev-team-with-a-long-namespace-name-aaa")
        );
        for value in one.tags.values() {
            assert!(value.len() <= TAG_VALUE_MAX, "tag value too long: {value}");
        }
    }

    #[test]
    fn ambiguous_dashes_do_not_collide() {
        // stage "dev-x" in namespace "a" and stage "dev" in namespace "x-a" read the same.
        let mut spec = seed();
        spec.stage = "dev-x".into();
        let one = plan(&spec, &who("a", "n", "us-east-1")).unwrap();
        let two = plan(&seed(), &who("x-a", "n", "us-east-1")).unwrap();
        assert_ne!(one.api_name, two.api_name);
        assert_ne!(one.role_name, two.role_name);
        assert_ne!(one.identity_pool_name, two.identity_pool_name);
    }

    #[test]
    fn two_stages_of_one_spec_share_no_name() {
        let dev = seed_plan();
        let mut spec = seed();
        spec.stage = "prod".into();
        let prod = plan(&spec, &who("default", "api-auth-auth0", "us-east-1")).unwrap();
        assert!(prod.api_name.starts_with("prod-"));
        assert_ne!(dev.api_name, prod.api_name);
        assert_ne!(dev.role_name, prod.role_name);
        assert_ne!(dev.identity_pool_name, prod.identity_pool_name);
        assert_ne!(dev.permission_sid, prod.permission_sid);
        assert_eq!(dev.oidc, prod.oidc, "the OIDC provider is shared");
    }
}
