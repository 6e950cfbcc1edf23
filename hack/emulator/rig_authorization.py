"""What AWS authorizes for each call: the IAM action(s), the resource ARN(s) and the request
context, as the Service Authorization Reference defines them, read from the request and
from the emulator's own state (resource tags, role boundaries, trust policies).

This is the rig's own reading of AWS's rules, written without the operator's code: it
is half of the judge (`rig_judge` sends what this module derives to the policy simulator).

Rules applied throughout:
  * `aws:RequestTag/<key>` and `aws:TagKeys` come from the tags the request sends;
    `aws:ResourceTag/<key>` (and `iam:ResourceTag/<key>` for IAM roles) from the tags the
    resource has now. The simulator drops keys the reference does not define for an
    action, as AWS does.
  * Tag-on-create: IAM authorizes the tag action too (iam:TagRole with CreateRole,
    iam:TagOpenIDConnectProvider with CreateOpenIDConnectProvider), on the new resource,
    which has no tags yet.
  * `lambda:Principal`: AddPermission's Principal; for RemovePermission, the principal of
    the function policy's statement being removed.
  * Passing a role to a service (Cognito's SetIdentityPoolRoles) needs iam:PassRole on
    each role, with iam:PassedToService.
  * API Gateway V2 child resources (routes, integrations, ...) cannot carry tags; access
    control reads the tags of the API they belong to (and a stage's own on top), which is
    how the reference's aws:ResourceTag on those resource types can hold.
  * VPC links are resources of their own (arn:aws:apigateway:REGION::/vpclinks/ID) with
    their own tags. While the account has no AWSServiceRoleForAPIGateway, CreateVpcLink
    also needs iam:CreateServiceLinkedRole on that role with iam:AWSServiceName
    ops.apigateway.amazonaws.com: API Gateway creates it as the caller, and it then manages
    the links' network interfaces (the rig has no EC2 to judge those against).
  * Authorizers: apigateway:Request/AuthorizerType and AuthorizerUri from the request,
    apigateway:Resource/* from the authorizer there now.
"""

import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlparse

from moto.apigatewayv2.models import apigatewayv2_backends
from moto.awslambda.models import lambda_backends
from moto.cognitoidentity.models import cognitoidentity_backends
from moto.iam.models import iam_backends
from moto.utilities.utils import get_partition

import rig_vpc_links

COGNITO_PUBLIC = {"GetId", "GetCredentialsForIdentity", "GetOpenIdToken", "UnlinkIdentity"}
COGNITO_SERVICE = "cognito-identity.amazonaws.com"


class UnknownCall(Exception):
    """A call the rig cannot authorize: refused rather than let through unjudged."""


@dataclass
class Check:
    action: str
    resource: str
    context: dict = field(default_factory=dict)
    resource_policy: dict | None = None
    # The account the resource is in, when it is not the caller's (a cross-account call
    # needs both the caller's policy and the resource's).
    resource_account: str | None = None

    def to_json(self, principal) -> dict:
        context = {
            "aws:PrincipalArn": _principal_arn(principal.arn),
            "aws:PrincipalAccount": principal.account,
            "aws:SecureTransport": "true",
            **{f"aws:PrincipalTag/{k}": v for k, v in principal.tags.items()},
            **self.context,
        }
        body = {"action": self.action, "resource": self.resource, "context": context}
        if self.resource_policy is not None:
            body["resourcePolicy"] = self.resource_policy
        if self.resource_account is not None:
            body["resourceAccount"] = self.resource_account
        return body


def _principal_arn(arn: str) -> str:
    """aws:PrincipalArn of a role session is the role's ARN (without the path)."""
    match = re.match(r"arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/.+", arn)
    if match:
        return f"arn:{match[1]}:iam::{match[2]}:role/{match[3]}"
    return arn


def request_tags(tags: dict) -> dict:
    if not tags:
        return {}
    context = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    context["aws:TagKeys"] = list(tags)
    return context


def resource_tags(tags: dict, iam: bool = False) -> dict:
    context = {f"aws:ResourceTag/{k}": v for k, v in (tags or {}).items()}
    if iam:
        context.update({f"iam:ResourceTag/{k}": v for k, v in (tags or {}).items()})
    return context


def _tag_dict(tags) -> dict:
    """moto keeps tags as {k: v}, {k: {"Key": k, "Value": v}} or [{"Key", "Value"}]."""
    if not tags:
        return {}
    if isinstance(tags, dict):
        return {k: (v["Value"] if isinstance(v, dict) else v) for k, v in tags.items()}
    return {t["Key"]: t["Value"] for t in tags}


def service_of(response) -> str:
    name = type(response).__name__
    return {
        "ApiGatewayV2Response": "apigateway",
        "LambdaResponse": "lambda",
        "CognitoIdentityResponse": "cognito-identity",
        "IamResponse": "iam",
        "TokenResponse": "sts",
    }.get(name, getattr(response, "service_name", "unknown"))


def is_public(response, operation: str) -> bool:
    """Calls AWS serves without credentials (each judges its caller its own way:
    rig_identity, rig_web_identity)."""
    service = service_of(response)
    return (service == "cognito-identity" and operation in COGNITO_PUBLIC) or (
        service == "sts" and operation == "AssumeRoleWithWebIdentity"
    )


def checks_for(service: str, operation: str, response, principal) -> list[Check]:
    handler = {
        "apigateway": _apigateway,
        "lambda": _lambda,
        "cognito-identity": _cognito,
        "iam": _iam,
        "sts": _sts,
    }.get(service)
    if handler is None:
        raise UnknownCall(f"no rules for the service {service}")
    return handler(operation, response, principal)


def _json_body(response) -> dict:
    raw = response.body
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}


# --- API Gateway V2 -----------------------------------------------------------------------

API_PATH = re.compile(r"^/v2(?P<rest>/apis/(?P<api>[^/]+)(?:/stages/(?P<stage>[^/]+))?.*)$")
DOMAIN_PATH = re.compile(r"^/v2/domainnames/(?P<domain>[^/]+)(?:/.*)?$")
VPC_LINK_PATH = re.compile(r"^/v2/vpclinks/(?P<link>[^/]+)$")
AUTHORIZER_PATH = re.compile(r"^/v2/apis/[^/]+/authorizers/(?P<authorizer>[^/]+)$")


def _apigateway(operation: str, response, principal) -> list[Check]:
    """API Gateway authorizes by HTTP verb on the resource's path: apigateway:POST on
    arn:aws:apigateway:REGION::/apis/ID/routes, and so on."""
    path = urlparse(response.uri).path
    if not path.startswith("/v2/"):
        raise UnknownCall(f"{response.method} {path} is not an API Gateway V2 path")
    region = response.region
    partition = get_partition(region)
    rest = path[len("/v2"):]
    resource = f"arn:{partition}:apigateway:{region}::{rest}"
    backend = apigatewayv2_backends[principal.account][region]
    context = {}
    body = _json_body(response) if response.method in ("POST", "PATCH", "PUT") else {}
    match = API_PATH.match(path)
    if match:
        api = backend.apis.get(match["api"])
        if api is not None:
            tags = dict(backend.tagger.get_tag_dict_for_resource(api.arn))
            if match["stage"]:
                stage = api.stages.get(unquote(match["stage"]))
                if stage is not None:
                    tags.update(stage.tags or {})
            context.update(resource_tags(tags))
    # A custom domain's own tags; its API mappings have none, and access control reads
    # the domain's (as for an API's children).
    match = DOMAIN_PATH.match(path)
    if match:
        domain = backend.domain_names.get(unquote(match["domain"]))
        if domain is not None:
            context.update(resource_tags(domain.tags or {}))
    # A VPC link's own tags (it is no child of an API).
    match = VPC_LINK_PATH.match(path)
    if match:
        link = backend.vpc_links.get(match["link"])
        if link is not None:
            context.update(resource_tags(backend.tagger.get_tag_dict_for_resource(link.arn)))
    # Authorizers: the type and Lambda URI asked for, and those of the one there now
    # (ArrayOfString in the reference).
    if operation in ("CreateAuthorizer", "UpdateAuthorizer"):
        if "authorizerType" in body:
            context["apigateway:Request/AuthorizerType"] = [body["authorizerType"]]
        if body.get("authorizerUri"):
            context["apigateway:Request/AuthorizerUri"] = [body["authorizerUri"]]
    match = AUTHORIZER_PATH.match(path)
    if match and operation in ("UpdateAuthorizer", "DeleteAuthorizer"):
        api = backend.apis.get(API_PATH.match(path)["api"])
        current = None if api is None else api.authorizers.get(match["authorizer"])
        if current is not None:
            context["apigateway:Resource/AuthorizerType"] = [current.authorizer_type]
            if current.authorizer_uri:
                context["apigateway:Resource/AuthorizerUri"] = [current.authorizer_uri]
    if operation in ("CreateApi", "CreateStage", "TagResource", "CreateDomainName", "CreateVpcLink"):
        context.update(request_tags(body.get("tags") or {}))
    if operation in ("CreateDomainName", "UpdateDomainName"):
        # A list (ArrayOfString in the reference): one per configuration, REGIONAL unless said.
        configurations = body.get("domainNameConfigurations") or []
        context["apigateway:Request/EndpointType"] = [
            c.get("endpointType", "REGIONAL") for c in configurations
        ]
    if operation == "UntagResource":
        keys = parse_qs(urlparse(response.uri).query).get("tagKeys", [])
        context["aws:TagKeys"] = keys
    if operation == "TagResource" or operation == "UntagResource":
        # The Tags resource type has no aws:ResourceTag in the reference.
        context = {k: v for k, v in context.items() if not k.startswith("aws:ResourceTag/")}
    if "authorizationType" in body:
        context["apigateway:Request/RouteAuthorizationType"] = body["authorizationType"]
    if operation in ("CreateApi", "UpdateApi") and "name" in body:
        context["apigateway:Request/ApiName"] = body["name"]
    checks = [Check(f"apigateway:{response.method}", resource, context)]
    if operation == "CreateVpcLink" and not rig_vpc_links.has_service_linked_role(principal.account, region):
        checks.append(Check(
            "iam:CreateServiceLinkedRole",
            rig_vpc_links.service_linked_role_arn(principal.account, region),
            {"iam:AWSServiceName": rig_vpc_links.SERVICE_LINKED_ROLE_SERVICE},
        ))
    return checks


# --- Lambda --------------------------------------------------------------------------------

LAMBDA_FUNCTION = re.compile(r"^/[^/]+/functions/(?P<name>[^/]+)(?P<rest>/.*)?$")
LAMBDA_ACTIONS = {"Invoke": "InvokeFunction", "GetPolicy": "GetPolicy"}


def _function_arn(name: str, region: str, account: str) -> str:
    if name.startswith("arn:"):
        return name
    partition = get_partition(region)
    return f"arn:{partition}:lambda:{region}:{account}:function:{name}"


def _statement_principal(function, statement_id: str) -> str | None:
    """Who the statement `statement_id` of `function`'s policy grants to, as AddPermission's
    Principal names it: a service, an account or ARN, or `*`."""
    try:
        policy = function.policy.get_policy()["Policy"]
    except Exception:  # noqa: BLE001 - no policy: no such statement
        return None
    if isinstance(policy, str):
        policy = json.loads(policy)
    for statement in policy.get("Statement", []):
        if statement.get("Sid") != statement_id:
            continue
        granted = statement.get("Principal")
        if isinstance(granted, dict):
            granted = granted.get("Service") or granted.get("AWS")
        if isinstance(granted, list):
            granted = granted[0] if granted else None
        return granted
    return None


def _lambda(operation: str, response, principal) -> list[Check]:
    region = response.region
    path = urlparse(response.uri).path
    if operation in ("ListFunctions",):
        return [Check(f"lambda:{operation}", "*")]
    if operation == "CreateFunction":
        body = _json_body(response)
        arn = _function_arn(body.get("FunctionName", ""), region, principal.account)
        checks = [Check("lambda:CreateFunction", arn, request_tags(body.get("Tags") or {}))]
        if body.get("Role"):
            checks.append(Check("iam:PassRole", body["Role"], {"iam:PassedToService": "lambda.amazonaws.com"}))
        return checks
    match = LAMBDA_FUNCTION.match(path)
    if match is None:
        raise UnknownCall(f"{response.method} {path} names no function")
    name = unquote(match["name"])
    qualifier = parse_qs(urlparse(response.uri).query).get("Qualifier", [None])[0]
    arn = _function_arn(name, region, principal.account)
    if qualifier and arn.count(":") == 6:
        arn = f"{arn}:{qualifier}"
    context = {}
    function = None
    try:
        function = lambda_backends[principal.account][region].get_function(name)
        context.update(resource_tags(_tag_dict(function.tags)))
    except Exception:  # noqa: BLE001 - a missing function has no tags; moto answers 404 itself
        pass
    if operation == "RemovePermission" and function is not None:
        # lambda:Principal is the principal of the statement being removed (the request
        # names only its id).
        statement_id = unquote((match["rest"] or "").rsplit("/", 1)[-1])
        granted_to = _statement_principal(function, statement_id)
        if granted_to is not None:
            context["lambda:Principal"] = granted_to
    if operation == "AddPermission":
        body = _json_body(response)
        if body.get("Principal"):
            context["lambda:Principal"] = body["Principal"]
        if body.get("FunctionUrlAuthType"):
            context["lambda:FunctionUrlAuthType"] = body["FunctionUrlAuthType"]
    action = LAMBDA_ACTIONS.get(operation, operation)
    return [Check(f"lambda:{action}", arn, context)]


# --- Cognito Identity ---------------------------------------------------------------------


def _pool_arn(region: str, account: str, pool_id: str) -> str:
    return f"arn:{get_partition(region)}:cognito-identity:{region}:{account}:identitypool/{pool_id}"


def _cognito(operation: str, response, principal) -> list[Check]:
    region = response.region
    backend = cognitoidentity_backends[principal.account][region]
    params = _json_body(response)
    action = f"cognito-identity:{operation}"
    if operation in ("CreateIdentityPool",):
        return [Check(action, "*", request_tags(params.get("IdentityPoolTags") or {}))]
    if operation in ("ListIdentityPools", "DescribeIdentity", "ListIdentities", "LookupDeveloperIdentity"):
        return [Check(action, "*")]
    pool_id = params.get("IdentityPoolId")
    arn = params.get("ResourceArn") or (_pool_arn(region, principal.account, pool_id) if pool_id else None)
    if arn is None:
        raise UnknownCall(f"{operation} names no identity pool")
    pool_id = pool_id or arn.rsplit("/", 1)[-1]
    pool = backend.identity_pools.get(pool_id)
    current = _tag_dict(pool.tags) if pool is not None else {}
    context = resource_tags(current)
    if operation == "SetIdentityPoolRoles":
        # The reference gives SetIdentityPoolRoles no resource type: only "*" grants it.
        checks = [Check(action, "*")]
        roles = list((params.get("Roles") or {}).values())
        for mapping in (params.get("RoleMappings") or {}).values():
            rules = (mapping.get("RulesConfiguration") or {}).get("Rules") or []
            roles.extend(rule.get("RoleARN") for rule in rules if rule.get("RoleARN"))
        for role in sorted(set(roles)):
            checks.append(Check("iam:PassRole", role, {
                **_role_tags(principal.account, response.region, role),
                "iam:PassedToService": COGNITO_SERVICE,
                "iam:AssociatedResourceArn": arn,
            }))
        return checks
    checks = [Check(action, arn, context)]
    if operation == "TagResource":
        checks[0].context.update(request_tags(params.get("Tags") or {}))
    if operation == "UntagResource":
        checks[0].context["aws:TagKeys"] = params.get("TagKeys") or []
    if operation == "UpdateIdentityPool" and "IdentityPoolTags" in params:
        wanted = params.get("IdentityPoolTags") or {}
        added = {k: v for k, v in wanted.items() if current.get(k) != v}
        removed = [k for k in current if k not in wanted]
        if added:
            checks.append(Check("cognito-identity:TagResource", arn, {**context, **request_tags(added)}))
        if removed:
            checks.append(Check("cognito-identity:UntagResource", arn, {**context, "aws:TagKeys": removed}))
    return checks


# --- IAM -----------------------------------------------------------------------------------


def _role_tags(account: str, region: str, role_arn: str) -> dict:
    """The resource-tag context of the role `role_arn` (none when it does not exist)."""
    backend = iam_backends[account][get_partition(region)]
    try:
        role = backend.get_role_by_arn(role_arn)
    except Exception:  # noqa: BLE001 - an unknown role has no tags
        return {}
    return resource_tags(_tag_dict(role.tags), iam=True)


def _iam_params(response) -> dict:
    return response.params if isinstance(getattr(response, "params", None), dict) else {}


def _param(response, name):
    value = response._get_param(name)
    if value is None:
        value = _iam_params(response).get(name)
    return value


def _iam_tags(response) -> dict:
    tags = _param(response, "Tags") or []
    if isinstance(tags, dict):
        tags = list(tags.values())
    return {t["Key"]: t["Value"] for t in tags}


def _iam(operation: str, response, principal) -> list[Check]:
    """IAM's actions are its operations' names; the resource is the one the call names."""
    backend = iam_backends[principal.account][get_partition(response.region)]
    partition = get_partition(response.region)
    action = f"iam:{operation}"
    role_name = _param(response, "RoleName")
    if role_name:
        role = next((r for r in backend.roles.values() if r.name == role_name), None)
        if operation == "CreateRole":
            path = _param(response, "Path") or "/"
            arn = f"arn:{partition}:iam::{principal.account}:role{path}{role_name}"
            tags = _iam_tags(response)
            context = request_tags(tags)
            boundary = _param(response, "PermissionsBoundary")
            if boundary:
                context["iam:PermissionsBoundary"] = boundary
            checks = [Check(action, arn, context)]
            if tags:
                checks.append(Check("iam:TagRole", arn, request_tags(tags)))
            return checks
        # An existing role is authorized by its ARN (with its path); one that does not
        # exist by role/NAME, without a path, as IAM cannot know the path it would have.
        arn = role.arn if role is not None else f"arn:{partition}:iam::{principal.account}:role/{role_name}"
        context = resource_tags(_tag_dict(role.tags), iam=True) if role is not None else {}
        if role is not None and role.permissions_boundary_arn:
            context["iam:PermissionsBoundary"] = role.permissions_boundary_arn
        if operation == "PutRolePermissionsBoundary":
            context["iam:PermissionsBoundary"] = _param(response, "PermissionsBoundary")
        if operation in ("AttachRolePolicy", "DetachRolePolicy"):
            context["iam:PolicyARN"] = _param(response, "PolicyArn")
        if operation == "TagRole":
            context.update(request_tags(_iam_tags(response)))
        if operation == "UntagRole":
            context["aws:TagKeys"] = _param(response, "TagKeys") or []
        return [Check(action, arn, context)]
    if operation == "CreateOpenIDConnectProvider":
        url = urlparse(_param(response, "Url") or "")
        arn = f"arn:{partition}:iam::{principal.account}:oidc-provider/{url.netloc}{url.path}"
        tags = _iam_tags(response)
        checks = [Check(action, arn, request_tags(tags))]
        if tags:
            checks.append(Check("iam:TagOpenIDConnectProvider", arn, request_tags(tags)))
        return checks
    provider_arn = _param(response, "OpenIDConnectProviderArn")
    if provider_arn:
        provider = backend.open_id_providers.get(provider_arn)
        context = resource_tags(_tag_dict(provider.tags)) if provider is not None else {}
        if operation == "TagOpenIDConnectProvider":
            context.update(request_tags(_iam_tags(response)))
        if operation == "UntagOpenIDConnectProvider":
            context["aws:TagKeys"] = _param(response, "TagKeys") or []
        return [Check(action, provider_arn, context)]
    policy_arn = _param(response, "PolicyArn")
    if policy_arn:
        return [Check(action, policy_arn)]
    user_name = _param(response, "UserName")
    if user_name:
        return [Check(action, f"arn:{partition}:iam::{principal.account}:user/{user_name}")]
    if operation.startswith("List") or operation in ("CreatePolicy", "GetAccountSummary"):
        resource = "*"
        if operation == "CreatePolicy":
            path = _param(response, "Path") or "/"
            resource = f"arn:{partition}:iam::{principal.account}:policy{path}{_param(response, 'PolicyName')}"
        return [Check(action, resource)]
    raise UnknownCall(f"{operation} names no resource the rig knows")


# --- STS -----------------------------------------------------------------------------------


def _sts(operation: str, response, principal) -> list[Check]:
    if operation == "AssumeRole":
        role_arn = _param(response, "RoleArn")
        # The role's trust policy is in the role's account, which may be another one.
        parts = role_arn.split(":")
        role_account = parts[4] if len(parts) > 5 and parts[4] else principal.account
        backend = iam_backends[role_account][get_partition(response.region)]
        trust = None
        try:
            role = backend.get_role_by_arn(role_arn)
            trust = json.loads(role.assume_role_policy_document)
        except Exception:  # noqa: BLE001 - no such role: no trust
            pass
        context = {}
        external_id = _param(response, "ExternalId")
        if external_id:
            context["sts:ExternalId"] = external_id
        session_name = _param(response, "RoleSessionName")
        if session_name:
            context["sts:RoleSessionName"] = session_name
        return [Check("sts:AssumeRole", role_arn, context, resource_policy=trust,
                      resource_account=role_account)]
    raise UnknownCall(f"no rules for sts:{operation}")
