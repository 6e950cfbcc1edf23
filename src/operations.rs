//! Every call the operator makes, named once: the AWS operations (by the names AWS gives
//! them, as in its errors, IAM's actions and CloudTrail) and the operator's own Kubernetes
//! writes. The AWS layer names its requests and errors by these, the fake counts and fails
//! them by these, events name their action by these, and a kind lists its creates as these.

use std::fmt;

/// Declares [`Call`] with each variant's name.
macro_rules! calls {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// One call (see the module documentation).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Call {
            $($(#[$doc])* $variant,)*
        }

        impl Call {
            /// Its name: AWS's operation name, or the operator's own.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Call::$variant => $name,)*
                }
            }
        }
    };
}

calls! {
    // Changes to AWS.
    CreateOpenIdConnectProvider => "CreateOpenIDConnectProvider",
    TagOpenIdConnectProvider => "TagOpenIDConnectProvider",
    UntagOpenIdConnectProvider => "UntagOpenIDConnectProvider",
    AddClientIdToOpenIdConnectProvider => "AddClientIDToOpenIDConnectProvider",
    RemoveClientIdFromOpenIdConnectProvider => "RemoveClientIDFromOpenIDConnectProvider",
    DeleteOpenIdConnectProvider => "DeleteOpenIDConnectProvider",
    CreateVpcLink => "CreateVpcLink",
    UpdateVpcLink => "UpdateVpcLink",
    DeleteVpcLink => "DeleteVpcLink",
    CreateApi => "CreateApi",
    UpdateApi => "UpdateApi",
    DeleteApi => "DeleteApi",
    TagResource => "TagResource",
    CreateIntegration => "CreateIntegration",
    DeleteIntegration => "DeleteIntegration",
    CreateAuthorizer => "CreateAuthorizer",
    UpdateAuthorizer => "UpdateAuthorizer",
    DeleteAuthorizer => "DeleteAuthorizer",
    CreateRoute => "CreateRoute",
    UpdateRoute => "UpdateRoute",
    DeleteRoute => "DeleteRoute",
    CreateStage => "CreateStage",
    UpdateStage => "UpdateStage",
    CreateDomainName => "CreateDomainName",
    UpdateDomainName => "UpdateDomainName",
    DeleteDomainName => "DeleteDomainName",
    CreateApiMapping => "CreateApiMapping",
    DeleteApiMapping => "DeleteApiMapping",
    AddPermission => "AddPermission",
    RemovePermission => "RemovePermission",
    CreateIdentityPool => "CreateIdentityPool",
    UpdateIdentityPool => "UpdateIdentityPool",
    /// UntagResource: of an identity pool (Cognito), or of an API (in a TagsDrifted warning).
    UntagResource => "UntagResource",
    DeleteIdentityPool => "DeleteIdentityPool",
    CreateRole => "CreateRole",
    UpdateAssumeRolePolicy => "UpdateAssumeRolePolicy",
    TagRole => "TagRole",
    UntagRole => "UntagRole",
    DeleteRole => "DeleteRole",
    PutRolePolicy => "PutRolePolicy",
    DeleteRolePolicy => "DeleteRolePolicy",
    SetIdentityPoolRoles => "SetIdentityPoolRoles",
    // Reads of AWS.
    GetCallerIdentity => "GetCallerIdentity",
    GetFunction => "GetFunction",
    DeleteAccessLogSettings => "DeleteAccessLogSettings",
    DeleteCorsConfiguration => "DeleteCorsConfiguration",
    DeleteRouteSettings => "DeleteRouteSettings",
    DeleteStage => "DeleteStage",
    DescribeIdentityPool => "DescribeIdentityPool",
    GetApi => "GetApi",
    GetApiMappings => "GetApiMappings",
    GetApis => "GetApis",
    GetAuthorizers => "GetAuthorizers",
    GetDomainName => "GetDomainName",
    GetIdentityPoolRoles => "GetIdentityPoolRoles",
    GetIntegrations => "GetIntegrations",
    GetOpenIdConnectProvider => "GetOpenIDConnectProvider",
    GetPolicy => "GetPolicy",
    GetRole => "GetRole",
    GetRolePolicy => "GetRolePolicy",
    GetRoutes => "GetRoutes",
    GetStage => "GetStage",
    GetVpcLink => "GetVpcLink",
    GetVpcLinks => "GetVpcLinks",
    ListIdentityPools => "ListIdentityPools",
    ListRolePolicies => "ListRolePolicies",
    ListTagsForResource => "ListTagsForResource",
    // The operator's own (Kubernetes).
    WriteOutputs => "WriteOutputs",
    DeleteOutputs => "DeleteOutputs",
    Reconcile => "Reconcile",
    Delete => "Delete",
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_awss_where_they_differ_from_the_variant() {
        assert_eq!(
            Call::CreateOpenIdConnectProvider.to_string(),
            "CreateOpenIDConnectProvider"
        );
        assert_eq!(Call::GetApis.name(), "GetApis");
    }
}
