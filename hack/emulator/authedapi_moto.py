"""moto server with the AWS calls authedapi needs that moto lacks.

Run as `python authedapi_moto.py -p PORT` (the same flags as `moto_server`). Every call
added here reads and writes moto's own backend state, so it is consistent with the calls
moto implements (a pool deleted with DeleteIdentityPool loses its roles and tags too).

Added:
  cognito-identity  SetIdentityPoolRoles, GetIdentityPoolRoles,
                    TagResource, UntagResource, ListTagsForResource
  iam               AddClientIDToOpenIDConnectProvider,
                    RemoveClientIDFromOpenIDConnectProvider
  apigatewayv2      GetAuthorizers, UpdateStage (RouteSettings merged, as AWS does),
                    DeleteRouteSettings, DeleteAccessLogSettings, UpdateDomainName
Test isolation:
  an access key id "AKIARIG0" + 12 digits acts in the account those digits name, so tests
  sharing one emulator each work in an account of their own (as they would in AWS); it is
  that account's administrator.
IAM judged as AWS does (rig_judge.py, rig_authorization.py): every other signed request is
  authorized against its principal's policies by the IAM judge process before moto acts.
Cognito's credential flow as AWS runs it (rig_identity.py): GetId and
  GetCredentialsForIdentity verify the ID token, choose the role, have its trust judged
  and issue that role's session.
IRSA as AWS runs it (rig_web_identity.py): STS AssumeRoleWithWebIdentity verifies the token
  against its issuer (an IAM OIDC provider of the account; keys from the issuer's discovery
  document) and has the role's trust judged before moto issues the session.
The execute-api data plane (rig_execute_api.py): every HTTP API served, authorized and
  integrated as API Gateway does, for Host <apiId>.execute-api.<region>.amazonaws.com.
Corrected to behave as AWS does:
  cognito-identity  UpdateIdentityPool replaces the whole pool (moto kept the old name and
                    any field the request left out).
  apigatewayv2      CreateRoute refuses a route key the API already has (ConflictException).
                    CreateDomainName and UpdateDomainName take only a certificate ACM (moto's
                    ACM state) holds, ISSUED, in the domain's account and region
                    (BadRequestException otherwise), and answer with the regional target
                    host name, its hosted zone and AVAILABLE, as AWS does.
                    CreateApiMapping refuses a key the domain already maps (ConflictException)
                    and a stage the API lacks (NotFoundException).
                    DeleteDomainName deletes the domain's mappings (moto failed on any).
                    CreateAuthorizer and UpdateAuthorizer check a REQUEST (Lambda)
                    authorizer as AWS does: a Lambda function URI, payload 1.0 or 2.0,
                    simple responses only with 2.0, a TTL of 0 to 3600 seconds and identity
                    sources whenever it caches (BadRequestException otherwise).
                    VPC links (rig_vpc_links.py): CreateVpcLink wants a name and subnets,
                    Get/Update/DeleteVpcLink of a link the account lacks is NotFoundException
                    (moto deleted nothing silently), DeleteVpcLink answers 202 and drops the
                    link's tags. Integrations with ConnectionType VPC_LINK need an existing
                    link and an ALB/NLB listener or Cloud Map service ARN; INTERNET is the
                    default connection type, as AWS answers it.
Rig control (POST, loopback): /_rig/certificates issues an ACM certificate in an account
  and region (or leaves it PENDING_VALIDATION) and answers its ARN; /_rig/invocations
  answers how many times a function (by ARN) has run, as its log would show;
  /_rig/private-targets says which URL stands in for a VPC link's private target (an
  ALB/NLB listener or Cloud Map service ARN) in the data plane.
  lambda            AddPermission refuses a statement id the policy already has
                    (ResourceConflictException).
"""

import json
import re
import sys
from urllib.parse import unquote

import moto.iam.models
from moto import server
from moto.cognitoidentity.exceptions import ResourceNotFoundError
from moto.cognitoidentity.models import CognitoIdentityBackend, cognitoidentity_backends
from moto.cognitoidentity.responses import CognitoIdentityResponse
from moto.core.exceptions import JsonRESTError
from moto.iam.exceptions import LimitExceededException, ValidationError
from moto.iam.responses import IamResponse
from moto.core.responses import EmptyResult
import random
import string

from moto.acm.models import CertBundle, acm_backends
from moto.apigatewayv2.exceptions import BadRequestException, DomainNameAlreadyExists, DomainNameNotFound, StageNotFound
from moto.apigatewayv2.models import Api as ApiGatewayV2Api
from moto.apigatewayv2.models import ApiGatewayV2Backend
from moto.apigatewayv2 import urls as apigatewayv2_urls
from moto.apigatewayv2.responses import ApiGatewayV2Response
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.policy import Policy as LambdaPolicy
from moto.core.utils import utcnow

import rig_execute_api
import rig_identity
import rig_judge
import rig_vpc_links
import rig_web_identity

POOL_ARN = re.compile(
    r"^arn:aws[a-z-]*:cognito-identity:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):identitypool/(?P<pool>[\w-]+:[0-9a-f-]+)$"
)
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
MAX_CLIENT_IDS = 100
RIG_ACCESS_KEY = re.compile(r"AKIARIG0(\d{12})")


class InvalidParameterException(JsonRESTError):
    def __init__(self, message: str):
        super().__init__(error_type="InvalidParameterException", message=message)


# --- cognito-identity -------------------------------------------------------------------


def _pool(backend: CognitoIdentityBackend, pool_id: str):
    pool = backend.identity_pools.get(pool_id)
    if pool is None:
        raise ResourceNotFoundError(pool_id)
    return pool


def _pool_by_arn(response: CognitoIdentityResponse, arn: str):
    match = POOL_ARN.match(arn or "")
    if match is None:
        raise InvalidParameterException(f"Invalid ResourceArn: {arn}")
    backend = cognitoidentity_backends[match["account"]][match["region"]]
    return _pool(backend, match["pool"])


def set_identity_pool_roles(self: CognitoIdentityResponse) -> str:
    pool = _pool(self.backend, self._get_param("IdentityPoolId"))
    roles = self._get_param("Roles") or {}
    for kind, arn in roles.items():
        if kind not in ("authenticated", "unauthenticated"):
            raise InvalidParameterException(
                f"Invalid role type {kind}: must be authenticated or unauthenticated"
            )
        if not ROLE_ARN.match(arn):
            raise InvalidParameterException(f"Invalid role ARN: {arn}")
    mappings = self._get_param("RoleMappings") or {}
    for provider, mapping in mappings.items():
        if mapping.get("Type") not in ("Token", "Rules"):
            raise InvalidParameterException(
                f"Invalid role mapping type for {provider}: {mapping.get('Type')}"
            )
    pool.authedapi_roles = dict(roles)
    pool.authedapi_role_mappings = dict(mappings)
    return ""


def get_identity_pool_roles(self: CognitoIdentityResponse) -> str:
    pool_id = self._get_param("IdentityPoolId")
    pool = _pool(self.backend, pool_id)
    result = {"IdentityPoolId": pool_id, "Roles": getattr(pool, "authedapi_roles", {})}
    mappings = getattr(pool, "authedapi_role_mappings", {})
    if mappings:
        result["RoleMappings"] = mappings
    return json.dumps(result)


def tag_resource(self: CognitoIdentityResponse) -> str:
    pool = _pool_by_arn(self, self._get_param("ResourceArn"))
    pool.tags = {**(pool.tags or {}), **(self._get_param("Tags") or {})}
    return "{}"


def untag_resource(self: CognitoIdentityResponse) -> str:
    pool = _pool_by_arn(self, self._get_param("ResourceArn"))
    for key in self._get_param("TagKeys") or []:
        (pool.tags or {}).pop(key, None)
    return "{}"


def list_tags_for_resource(self: CognitoIdentityResponse) -> str:
    pool = _pool_by_arn(self, self._get_param("ResourceArn"))
    return json.dumps({"Tags": pool.tags or {}})


def update_identity_pool(
    self: CognitoIdentityBackend,
    identity_pool_id,
    identity_pool_name,
    allow_unauthenticated,
    login_providers,
    provider_name,
    provider_arns,
    identity_providers,
    saml_providers,
    tags,
) -> str:
    # AWS replaces the whole pool with the request; fields left out are cleared.
    pool = _pool(self, identity_pool_id)
    pool.identity_pool_name = identity_pool_name
    pool.allow_unauthenticated_identities = bool(allow_unauthenticated)
    pool.supported_login_providers = login_providers or {}
    pool.developer_provider_name = provider_name or ""
    pool.open_id_connect_provider_arns = provider_arns or []
    pool.cognito_identity_providers = identity_providers or []
    pool.saml_provider_arns = saml_providers or []
    if tags is not None:
        pool.tags = tags
    return pool.to_json()


# --- iam --------------------------------------------------------------------------------


def _provider(self: IamResponse):
    return self.backend.get_open_id_connect_provider(
        self._get_param("OpenIDConnectProviderArn")
    )


def add_client_id_to_open_id_connect_provider(self: IamResponse):
    provider = _provider(self)
    client_id = self._get_param("ClientID") or ""
    if not 1 <= len(client_id) <= 255:
        raise ValidationError("ClientID must be 1 to 255 characters long")
    if client_id not in provider.client_id_list:
        if len(provider.client_id_list) >= MAX_CLIENT_IDS:
            raise LimitExceededException(
                f"Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
            )
        provider.client_id_list.append(client_id)
    return EmptyResult()


def remove_client_id_from_open_id_connect_provider(self: IamResponse):
    provider = _provider(self)
    client_id = self._get_param("ClientID") or ""
    if client_id in provider.client_id_list:
        provider.client_id_list.remove(client_id)
    return EmptyResult()


# --- apigatewayv2 -----------------------------------------------------------------------


class ApiConflictException(JsonRESTError):
    code = 409

    def __init__(self, message: str):
        super().__init__("ConflictException", message)


def get_authorizers(self: ApiGatewayV2Response):
    api_id = self.path.split("/")[-2]
    api = self.apigatewayv2_backend.get_api(api_id)
    items = [authorizer.to_json() for authorizer in api.authorizers.values()]
    return 200, {}, json.dumps({"items": items})


STAGE_FIELDS = {
    "autoDeploy": "auto_deploy",
    "defaultRouteSettings": "default_route_settings",
    "accessLogSettings": "access_log_settings",
    "description": "description",
    "stageVariables": "stage_variables",
    "clientCertificateId": "client_certificate_id",
}


def update_stage(self: ApiGatewayV2Response):
    api_id = self.path.split("/")[-3]
    stage_name = unquote(self.path.split("/")[-1])
    stage = self.apigatewayv2_backend.get_stage(api_id, stage_name)
    params = json.loads(self.body or "{}")
    for wire, attribute in STAGE_FIELDS.items():
        if wire in params:
            setattr(stage, attribute, params[wire])
    # AWS merges route settings by route key; DeleteRouteSettings removes one.
    for route_key, settings in (params.get("routeSettings") or {}).items():
        stage.route_settings[route_key] = settings
    stage.updated = utcnow()
    return 200, {}, json.dumps(stage.to_json())


def delete_route_settings(self: ApiGatewayV2Response):
    # The route key holds a "/" (e.g. "GET /a"), so split on the fixed part of the path.
    head, route_key = self.path.split("/routesettings/", 1)
    parts = head.split("/")
    api_id, stage_name = parts[-3], unquote(parts[-1])
    stage = self.apigatewayv2_backend.get_stage(api_id, stage_name)
    stage.route_settings.pop(unquote(route_key), None)
    return 204, {}, ""


def delete_access_log_settings(self: ApiGatewayV2Response):
    parts = self.path.split("/")
    api_id, stage_name = parts[-4], unquote(parts[-2])
    stage = self.apigatewayv2_backend.get_stage(api_id, stage_name)
    stage.access_log_settings = None
    return 204, {}, ""


# API Gateway's regional hosted zones (for Route 53 aliases), by region.
REGIONAL_HOSTED_ZONES = {
    "us-east-1": "Z1UJRXOUMOOFQ8",
    "us-east-2": "ZOJJZC49E0EPZ",
    "us-west-1": "Z2MUQ32089INYE",
    "us-west-2": "Z2OJLYMUO9EFXC",
    "eu-west-1": "ZLY8HYME6SFDD",
    "eu-central-1": "Z1U9ULNL0V5AJ3",
}
CERTIFICATE_ARN = re.compile(
    r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):certificate/[\w-]+$"
)


def _check_certificate(backend: ApiGatewayV2Backend, arn: str) -> None:
    """API Gateway takes a regional certificate only if ACM has it, issued, in the
    domain's own account and region."""
    match = CERTIFICATE_ARN.match(arn or "")
    if match is None:
        raise BadRequestException(f"Invalid certificate ARN: {arn}")
    if match["region"] != backend.region_name:
        raise BadRequestException(
            f"Invalid certificate ARN: {arn}. Certificate must be in '{backend.region_name}'."
        )
    certificate = None
    if match["account"] == backend.account_id:
        certificate = acm_backends[backend.account_id][backend.region_name]._certificates.get(arn)
    if certificate is None:
        raise BadRequestException(f"Certificate {arn} not found.")
    certificate.check()
    if certificate.status != "ISSUED":
        raise BadRequestException(
            f"Certificate {arn} is in status {certificate.status}: only ISSUED certificates can be used."
        )


def _configured(backend: ApiGatewayV2Backend, configurations, target: str | None = None) -> list:
    """The configurations as AWS answers them: the certificate checked, the target filled in."""
    if not configurations or len(configurations) != 1:
        raise BadRequestException("Exactly one domain name configuration is required.")
    configuration = dict(configurations[0])
    _check_certificate(backend, configuration.get("certificateArn"))
    configuration.setdefault("endpointType", "REGIONAL")
    configuration.setdefault("securityPolicy", "TLS_1_2")
    configuration["apiGatewayDomainName"] = target or (
        "d-" + "".join(random.choices(string.ascii_lowercase + string.digits, k=10))
        + f".execute-api.{backend.region_name}.amazonaws.com"
    )
    configuration["hostedZoneId"] = REGIONAL_HOSTED_ZONES.get(backend.region_name, "Z1UJRXOUMOOFQ8")
    configuration["domainNameStatus"] = "AVAILABLE"
    return [configuration]


_moto_create_domain_name = ApiGatewayV2Backend.create_domain_name


def create_domain_name(self, domain_name, domain_name_configurations, mutual_tls_authentication, tags):
    if domain_name in self.domain_names:
        raise DomainNameAlreadyExists
    configurations = _configured(self, domain_name_configurations)
    return _moto_create_domain_name(
        self, domain_name, configurations, mutual_tls_authentication, tags
    )


def update_domain_name(self: ApiGatewayV2Response):
    backend = self.apigatewayv2_backend
    domain = backend.get_domain_name(unquote(self.path.split("/")[-1]))
    params = json.loads(self.body or "{}")
    if "domainNameConfigurations" in params:
        target = (domain.domain_name_configurations or [{}])[0].get("apiGatewayDomainName")
        domain.domain_name_configurations = _configured(
            backend, params["domainNameConfigurations"], target
        )
    return 200, {}, json.dumps(domain.to_json())


def delete_domain_name(self, domain_name: str) -> None:
    if domain_name not in self.domain_names:
        raise DomainNameNotFound
    for mapping_id in [i for i, m in self.api_mappings.items() if m.domain_name == domain_name]:
        del self.api_mappings[mapping_id]
    del self.domain_names[domain_name]


_moto_create_api_mapping = ApiGatewayV2Backend.create_api_mapping


def create_api_mapping(self, api_id, api_mapping_key, domain_name, stage):
    if domain_name not in self.domain_names:
        raise DomainNameNotFound
    if any(
        m.domain_name == domain_name and m.api_mapping_key == api_mapping_key
        for m in self.api_mappings.values()
    ):
        raise ApiConflictException(
            f"ApiMapping for key '{api_mapping_key}' already exists on domain {domain_name}"
        )
    api = self.apis.get(api_id)
    if api is not None and stage not in api.stages:
        raise StageNotFound
    return _moto_create_api_mapping(self, api_id, api_mapping_key, domain_name, stage)


def issue_certificate(body: dict) -> str:
    """The rig's ACM: a certificate for `domain` in `account` and `region`, ISSUED unless
    `status` says otherwise."""
    backend = acm_backends[body["account"]][body["region"]]
    certificate = CertBundle.generate_cert(
        body["domain"], account_id=body["account"], region=body["region"]
    )
    certificate.type = "IMPORTED"
    certificate.status = body.get("status", "ISSUED")
    backend._certificates[certificate.arn] = certificate
    return certificate.arn


_moto_create_route = ApiGatewayV2Api.create_route


def create_route(self, *args, **kwargs):
    route_key = kwargs.get("route_key")
    if any(route.route_key == route_key for route in self.routes.values()):
        raise ApiConflictException(f"Route with key {route_key} already exists for this API")
    return _moto_create_route(self, *args, **kwargs)


LAMBDA_URI = re.compile(
    r"^arn:aws[a-z-]*:apigateway:[a-z0-9-]+:lambda:path/2015-03-31/functions/"
    r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[\w-]+(:[\w-]+)?/invocations$"
)
MAX_AUTHORIZER_TTL = 3600


def _check_request_authorizer(authorizer) -> None:
    """A Lambda REQUEST authorizer as AWS accepts one; BadRequestException otherwise."""
    if authorizer.authorizer_type != "REQUEST":
        return
    if not LAMBDA_URI.match(authorizer.authorizer_uri or ""):
        raise BadRequestException(f"Invalid authorizer URI: {authorizer.authorizer_uri}")
    version = authorizer.auth_payload_format_version
    if version not in ("1.0", "2.0"):
        raise BadRequestException(f"Invalid authorizer payload format version: {version}")
    if authorizer.enable_simple_response and version != "2.0":
        raise BadRequestException("Simple responses are only supported for payload format version 2.0")
    ttl = authorizer.auth_result_ttl
    if ttl is not None and not (isinstance(ttl, int) and 0 <= ttl <= MAX_AUTHORIZER_TTL):
        raise BadRequestException(
            f"AuthorizerResultTtlInSeconds must be between 0 and {MAX_AUTHORIZER_TTL}: {ttl}"
        )
    if ttl and not authorizer.identity_source:
        raise BadRequestException("Identity sources are required when authorization caching is enabled")


_moto_create_authorizer = ApiGatewayV2Api.create_authorizer
_moto_update_authorizer = ApiGatewayV2Api.update_authorizer


def create_authorizer(self, **kwargs):
    authorizer = _moto_create_authorizer(self, **kwargs)
    try:
        _check_request_authorizer(authorizer)
    except BadRequestException:
        del self.authorizers[authorizer.id]
        raise
    return authorizer


def update_authorizer(self, authorizer_id, **kwargs):
    import copy

    current = self.get_authorizer(authorizer_id)
    proposed = copy.copy(current)
    proposed.update(**kwargs)
    _check_request_authorizer(proposed)
    return _moto_update_authorizer(self, authorizer_id=authorizer_id, **kwargs)


# --- lambda -----------------------------------------------------------------------------


class ResourceConflictException(LambdaClientError):
    code = 409

    def __init__(self, message: str):
        super().__init__("ResourceConflictException", message)


_moto_add_statement = LambdaPolicy.add_statement


def add_statement(self, raw: str, qualifier=None):
    sid = json.loads(raw).get("StatementId") or json.loads(raw).get("Sid")
    if sid and any(statement.get("Sid") == sid for statement in self.statements):
        raise ResourceConflictException(
            f"The statement id ({sid}) provided already exists. Please provide a new "
            "statement id, or remove the existing statement."
        )
    return _moto_add_statement(self, raw, qualifier)


# --- accounts ---------------------------------------------------------------------------

_moto_account_id_from = moto.iam.models.get_account_id_from


def account_id_from(access_key: str) -> str:
    match = RIG_ACCESS_KEY.fullmatch(access_key or "")
    if match:
        return match[1]
    return _moto_account_id_from(access_key)


def install() -> None:
    """Add the missing calls to moto's response classes (moto dispatches by method name)."""
    moto.iam.models.get_account_id_from = account_id_from
    ApiGatewayV2Response.get_authorizers = get_authorizers
    ApiGatewayV2Response.update_stage = update_stage
    ApiGatewayV2Response.delete_route_settings = delete_route_settings
    ApiGatewayV2Response.delete_access_log_settings = delete_access_log_settings
    stages = "{0}/v2/apis/(?P<api_id>[^/]+)/stages/(?P<stage_name>[^/]+)"
    apigatewayv2_urls.url_paths[stages + "/routesettings/(?P<route_key>.+)$"] = (
        ApiGatewayV2Response.dispatch
    )
    apigatewayv2_urls.url_paths[stages + "/accesslogsettings$"] = ApiGatewayV2Response.dispatch
    ApiGatewayV2Api.create_route = create_route
    ApiGatewayV2Api.create_authorizer = create_authorizer
    ApiGatewayV2Api.update_authorizer = update_authorizer
    rig_vpc_links.install()
    ApiGatewayV2Backend.create_domain_name = create_domain_name
    ApiGatewayV2Backend.delete_domain_name = delete_domain_name
    ApiGatewayV2Backend.create_api_mapping = create_api_mapping
    ApiGatewayV2Response.update_domain_name = update_domain_name
    LambdaPolicy.add_statement = add_statement
    CognitoIdentityResponse.set_identity_pool_roles = set_identity_pool_roles
    CognitoIdentityResponse.get_identity_pool_roles = get_identity_pool_roles
    CognitoIdentityResponse.tag_resource = tag_resource
    CognitoIdentityResponse.untag_resource = untag_resource
    CognitoIdentityResponse.list_tags_for_resource = list_tags_for_resource
    CognitoIdentityBackend.update_identity_pool = update_identity_pool
    IamResponse.add_client_id_to_open_id_connect_provider = (
        add_client_id_to_open_id_connect_provider
    )
    IamResponse.remove_client_id_from_open_id_connect_provider = (
        remove_client_id_from_open_id_connect_provider
    )


def rig_control(app):
    """WSGI middleware: the rig's own calls, under /_rig/ (loopback only, like the rest)."""

    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO")
        calls = ("/_rig/issuers", "/_rig/expire-session", "/_rig/certificates", "/_rig/invocations", "/_rig/private-targets")
        if path not in calls or environ["REQUEST_METHOD"] != "POST":
            return app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        answer = None
        if path == "/_rig/certificates":
            answer = {"certificateArn": issue_certificate(body)}
        elif path == "/_rig/invocations":
            answer = {"count": rig_execute_api.invocations(body["functionArn"])}
        elif path == "/_rig/private-targets":
            rig_vpc_links.stand_in(body["account"], body["region"], body["target"], body["url"])
            answer = {}
        if answer is not None:
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(answer).encode()]
        if path == "/_rig/issuers":
            rig_identity.register_issuer(body["domain"], body["url"], body.get("ca"))
        else:
            # A test's clock: the session behind this access key has expired.
            rig_identity.expire_session(body["accessKeyId"])
        start_response("204 No Content", [])
        return [b""]

    return wrapped


def install_front() -> None:
    """Before moto: keep raw bodies (for SigV4), the rig's calls, the execute-api data plane."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    moto_dispatch = DomainDispatcherApplication.__call__

    def dispatch(self, environ, start_response):
        inner = rig_execute_api.data_plane(lambda e, s: moto_dispatch(self, e, s))
        return rig_judge.keep_raw_bodies(rig_control(inner))(environ, start_response)

    DomainDispatcherApplication.__call__ = dispatch


if __name__ == "__main__":
    install()
    rig_identity.install()
    rig_web_identity.install()
    rig_judge.install()
    install_front()
    server.main(sys.argv[1:])
