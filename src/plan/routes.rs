//! The route table: each route key checked (what the CRD pattern cannot say), its
//! integration target, and how API Gateway authorizes it.

use std::collections::{BTreeMap, BTreeSet};

use super::{Plan, PlanError};
use crate::api::{AuthedApiSpec, Authorization, Route};
use crate::aws::apigateway::{IntegrationTarget, RouteAuth};

/// Payload format of Lambda proxy integrations (the HTTP API default, as in SST).
pub const LAMBDA_PAYLOAD_FORMAT: &str = "2.0";

/// One route as it should exist.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedRoute {
    pub key: String,
    pub target: IntegrationTarget,
    pub authorization: Authorization,
    pub scopes: Vec<String>,
    /// The Lambda authorizer (its spec.authorizers name) of a lambda route.
    pub authorizer: Option<String>,
}

/// What the CRD pattern cannot say about a route key: parameter syntax, and a greedy
/// `{proxy+}` only as the last segment.
/// The routes, and the integrations and functions they need.
pub(super) struct RouteTable {
    pub routes: Vec<PlannedRoute>,
    pub integrations: BTreeSet<IntegrationTarget>,
    pub lambda_functions: BTreeSet<String>,
}

/// The route table of `spec`, its targets in `partition`.
pub(super) fn route_table(spec: &AuthedApiSpec, partition: &str) -> Result<RouteTable, PlanError> {
    let mut table = RouteTable {
        routes: Vec::with_capacity(spec.routes.len()),
        integrations: BTreeSet::new(),
        lambda_functions: BTreeSet::new(),
    };
    for route in &spec.routes {
        check_route_key(&route.route)?;
        let target = integration_target(route, partition)?;
        if let IntegrationTarget::Lambda { function_arn, .. } = &target {
            table.lambda_functions.insert(function_arn.clone());
        }
        table.integrations.insert(target.clone());
        table.routes.push(PlannedRoute {
            key: route.route.clone(),
            target,
            authorization: spec.authorization_of(route),
            scopes: route.scopes.clone().unwrap_or_default(),
            authorizer: route.authorizer.clone(),
        });
    }
    Ok(table)
}

fn check_route_key(key: &str) -> Result<(), PlanError> {
    let Some((_, path)) = key.split_once(' ') else {
        return Ok(()); // "$default"
    };
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let opens = segment.matches('{').count();
        let closes = segment.matches('}').count();
        if opens == 0 && closes == 0 {
            continue;
        }
        let param = segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .filter(|_| opens == 1 && closes == 1);
        let Some(param) = param else {
            return Err(PlanError(format!(
                "route {key:?}: a path parameter must be a whole segment, like /{{id}}"
            )));
        };
        let name = param.strip_suffix('+').unwrap_or(param);
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(PlanError(format!(
                "route {key:?}: bad path parameter {{{param}}}"
            )));
        }
        if param.ends_with('+') && i + 1 != segments.len() {
            return Err(PlanError(format!(
                "route {key:?}: a greedy parameter {{{param}}} must be the last segment"
            )));
        }
    }
    Ok(())
}

fn integration_target(route: &Route, partition: &str) -> Result<IntegrationTarget, PlanError> {
    let target = &route.target;
    match (&target.lambda, &target.http, &target.private) {
        (Some(lambda), None, None) => {
            let arn_partition = lambda.function_arn.split(':').nth(1).unwrap_or_default();
            if arn_partition != partition {
                return Err(PlanError(format!(
                    "route {:?}: function {} is in partition {arn_partition}, the API in {partition}",
                    route.route, lambda.function_arn
                )));
            }
            Ok(IntegrationTarget::Lambda {
                function_arn: lambda.function_arn.clone(),
                payload_format_version: lambda
                    .payload_format_version
                    .map(|v| v.as_str())
                    .unwrap_or(LAMBDA_PAYLOAD_FORMAT)
                    .to_owned(),
            })
        }
        (None, Some(http), None) => Ok(IntegrationTarget::Http {
            url: http.url.clone(),
            method: "ANY".to_owned(),
        }),
        // Its VPC link id is AWS's to give: see `through_link`.
        (None, None, Some(private)) => Ok(IntegrationTarget::Private {
            uri: private.uri().to_owned(),
            vpc_link_id: String::new(),
            tls_server_name: private.tls_server_name.clone(),
        }),
        _ => Err(PlanError(format!(
            "route {:?}: exactly one target kind must be set",
            route.route
        ))),
    }
}

impl Plan {
    /// How API Gateway should authorize `route`, given the authorizers' ids: the JWT
    /// authorizer's, and each Lambda authorizer's by its spec.authorizers name.
    pub fn route_auth(
        &self,
        route: &PlannedRoute,
        jwt_id: Option<&str>,
        lambda_ids: &BTreeMap<String, String>,
    ) -> RouteAuth {
        match route.authorization {
            Authorization::None => RouteAuth::None,
            Authorization::Iam => RouteAuth::Iam,
            Authorization::Jwt => RouteAuth::Jwt {
                authorizer_id: jwt_id.unwrap_or_default().to_owned(),
                scopes: route.scopes.clone(),
            },
            Authorization::Lambda => RouteAuth::Custom {
                authorizer_id: route
                    .authorizer
                    .as_ref()
                    .and_then(|name| lambda_ids.get(name))
                    .cloned()
                    .unwrap_or_default(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::test_support::*;

    #[test]
    fn a_lambda_in_another_partition_is_refused() {
        let p = plan(&seed(), &who("default", "x", "cn-north-1"));
        assert!(p.unwrap_err().0.contains("partition"));
    }

    #[test]
    fn route_table_and_integrations() {
        let mut spec = seed();
        spec.routes
            .push(route("POST /private", None, lambda("private")));
        spec.routes.push(route(
            "GET /docs",
            Some(Authorization::None),
            http("https://example.com/docs"),
        ));
        let p = plan(&spec, &who("default", "x", "us-east-1")).unwrap();
        assert_eq!(p.routes.len(), 4);
        assert_eq!(
            p.integrations.len(),
            3,
            "one integration per distinct target"
        );
        assert_eq!(p.lambda_functions.len(), 2);
        assert_eq!(p.routes[1].authorization, Authorization::None);
        assert_eq!(p.routes[2].authorization, Authorization::Iam);
        assert!(matches!(
            &p.routes[0].target,
            IntegrationTarget::Lambda { payload_format_version, .. } if payload_format_version == "2.0"
        ));
        assert!(
            matches!(&p.routes[3].target, IntegrationTarget::Http { method, .. } if method == "ANY")
        );
    }

    #[test]
    fn route_auth_for_each_kind() {
        let mut spec = seed();
        spec.routes[0].authorization = Some(Authorization::Jwt);
        spec.routes[0].scopes = Some(vec!["read".into()]);
        let p = plan(&spec, &who("default", "x", "us-east-1")).unwrap();
        let lambda_ids = BTreeMap::from([("users".to_owned(), "lambda-id".to_owned())]);
        assert_eq!(
            p.route_auth(&p.routes[0], Some("authz"), &lambda_ids),
            RouteAuth::Jwt {
                authorizer_id: "authz".into(),
                scopes: vec!["read".into()]
            }
        );
        assert_eq!(
            p.route_auth(&p.routes[1], Some("authz"), &lambda_ids),
            RouteAuth::None
        );

        spec.routes[0].authorization = Some(Authorization::Iam);
        spec.routes[0].scopes = None;
        spec.routes[1].authorization = Some(Authorization::Lambda);
        spec.routes[1].authorizer = Some("users".into());
        spec.authorizers = vec![authorizer("users", "auth")];
        let p = plan(&spec, &who("default", "x", "us-east-1")).unwrap();
        assert_eq!(
            p.route_auth(&p.routes[0], None, &lambda_ids),
            RouteAuth::Iam
        );
        assert_eq!(
            p.route_auth(&p.routes[1], None, &lambda_ids),
            RouteAuth::Custom {
                authorizer_id: "lambda-id".into()
            }
        );
    }

    #[test]
    fn bad_path_parameters_are_refused() {
        for key in [
            "GET /files/{proxy+}/more",
            "GET /a{b}",
            "GET /{}",
            "GET /{a b}",
        ] {
            let mut spec = seed();
            spec.routes[0].route = key.into();
            let err = plan(&spec, &who("default", "x", "us-east-1")).unwrap_err();
            assert!(err.0.contains(key), "{key}: {err}");
        }
        let mut spec = seed();
        spec.routes[0].route = "GET /files/{id}/{proxy+}".into();
        assert!(plan(&spec, &who("default", "x", "us-east-1")).is_ok());
    }
}
