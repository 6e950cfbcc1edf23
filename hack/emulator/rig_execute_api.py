"""The execute-api data plane: every HTTP API in the emulator, served as API Gateway serves
it, for requests whose Host is <apiId>.execute-api.<region>.amazonaws.com (the rig's front
door forwards https:// requests here with the Host kept).

This is the rig's own reading of API Gateway's documented behaviour (it shares nothing
with the operator):

  * Route selection: the most specific route wins: segment by segment a literal beats a
    {parameter}, which beats a greedy {proxy+}; a method beats ANY; $default comes last;
    nothing: 404 {"message":"Not Found"}. Path parameters are passed to the integration.
  * AWS_IAM: the request must be SigV4-signed for execute-api with a session that exists and
    has not expired, then execute-api:Invoke on
    arn:aws:execute-api:REGION:ACCOUNT:API/$default/METHOD/PATH is judged by the IAM judge
    with the caller's policies and permissions boundary. Refusals are API Gateway's:
    403 {"message":"Forbidden"} without a signature, the signature / token / expiry
    messages, and "User: ... is not authorized to perform: execute-api:Invoke on
    resource: ..." when the policy does not allow it.
  * JWT: a bearer token signed by the authorizer's issuer, its `iss` exactly the
    authorizer's issuer (a trailing slash counts), for one of its audiences, not expired
    (else 401 {"message":"Unauthorized"}); the route's scopes must intersect the
    token's `scope`/`scp` (else 403 {"message":"Forbidden"}).
  * CUSTOM (a Lambda REQUEST authorizer, rig_lambda_authorizer): the identity sources
    present (else 401 {"message":"Unauthorized"}, the function not called), the
    authorizer's function invoked only when its resource policy lets this authorizer
    (arn:...:API/authorizers/ID) invoke it (else 500), its answer cached per identity
    source values for the authorizer's TTL; a refusal is 403 {"message":"Forbidden"}; its
    context reaches the integration (requestContext.authorizer.lambda in payload 2.0,
    requestContext.authorizer in 1.0).
  * NONE: straight through. CORS preflight answered from the API's CORS configuration.
  * AWS_PROXY to Lambda: only when the function's resource policy lets this API invoke it
    (lambda:InvokeFunction by apigateway.amazonaws.com with aws:SourceArn, judged); the
    event built as AWS builds it (payload 2.0 or 1.0, requestContext.authorizer with the
    caller's Cognito identity), the function's own code run (Node.js, Python), its answer
    mapped as API Gateway maps it. Anything failing there: 500 {"message":"Internal
    Server Error"}.
  * HTTP_PROXY: the request forwarded to the integration's URL; through a VPC link
    (rig_vpc_links), to the URL standing in for its listener or Cloud Map service (503
    when none does, 500 when the link is gone).
  * Every answer of a routed request carries `x-rig-route-key` (API Gateway's
    $context.routeKey, as its access logs show it), so tests can tell routing from
    authorization.
"""

import base64
import datetime
import hashlib
import io
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from urllib.parse import parse_qsl, unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.apigatewayv2.models import apigatewayv2_backends
from moto.awslambda.models import lambda_backends
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition

import rig_identity
import rig_judge
import rig_lambda_authorizer
import rig_vpc_links

HOST = re.compile(r"^(?P<api>[a-z0-9]+)\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?::\d+)?$")
STAGE = "$default"
RUNTIMES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runtimes")
MAX_SKEW = datetime.timedelta(minutes=15)

_code_lock = threading.Lock()
_code_dirs: dict[str, str] = {}
_code_root = tempfile.mkdtemp(prefix="authedapi-rig-functions-")
# How many times each function (by ARN) has run: what its CloudWatch log would show. Tests
# read it through the rig's /_rig/invocations.
_invocations_lock = threading.Lock()
_invocations: dict[str, int] = {}


def invocations(function_arn: str) -> int:
    with _invocations_lock:
        return _invocations.get(function_arn, 0)


class Answer(Exception):
    """An answer API Gateway gives instead of the integration's."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


# --- finding the API and the route --------------------------------------------------------


def find_api(api_id: str, region: str):
    for account, backends in list(apigatewayv2_backends.items()):
        backend = dict.get(backends, region)
        if backend is not None and api_id in backend.apis:
            return account, backend.apis[api_id]
    return None, None


def _path_match(route_path: str, path: str):
    """(score, parameters) of `route_path` against `path`, or None. The score ranks
    segments: 2 literal, 1 {parameter}, 0 {greedy+}; a higher tuple is more specific."""
    want = route_path.strip("/").split("/") if route_path != "/" else []
    got = path.strip("/").split("/") if path not in ("", "/") else []
    score, params = [], {}
    for i, segment in enumerate(want):
        if segment.startswith("{") and segment.endswith("+}"):
            if i != len(want) - 1 or len(got) <= i:
                return None
            params[segment[1:-2]] = "/".join(got[i:])
            score.append(0)
            return tuple(score), params
        if i >= len(got):
            return None
        if segment.startswith("{") and segment.endswith("}"):
            params[segment[1:-1]] = unquote(got[i])
            score.append(1)
        elif segment == got[i]:
            score.append(2)
        else:
            return None
    if len(got) != len(want):
        return None
    return tuple(score), params


def select_route(api, method: str, path: str):
    """(route, path parameters) API Gateway would pick, or (None, {})."""
    best = None
    default = None
    for route in api.routes.values():
        key = route.route_key
        if key == "$default":
            default = route
            continue
        route_method, _, route_path = key.partition(" ")
        if route_method not in (method, "ANY"):
            continue
        matched = _path_match(route_path, path)
        if matched is None:
            continue
        rank = (matched[0], route_method != "ANY")
        if best is None or rank > best[0]:
            best = (rank, route, matched[1])
    if best is not None:
        return best[1], best[2]
    return default, {}


# --- authorization ------------------------------------------------------------------------


def invoke_arn(region: str, account: str, api_id: str, method: str, path: str) -> str:
    return f"arn:{get_partition(region)}:execute-api:{region}:{account}:{api_id}/{STAGE}/{method}/{path.lstrip('/')}"


def _session_of(access_key_id: str, account: str, partition: str):
    for assumed in sts_backends[account][partition].assumed_roles:
        if assumed.access_key_id == access_key_id:
            return assumed
    return None


def authorize_iam(request, account: str, region: str, api_id: str, body: bytes) -> dict:
    """The caller's identity for requestContext.authorizer.iam, or an Answer refusing."""
    authorization = request["headers"].get("authorization", "")
    scope = rig_judge.SIGNING_SCOPE.search(authorization)
    if not authorization.startswith("AWS4-HMAC-SHA256") or scope is None:
        raise Answer(403, "Forbidden")
    access_key = scope.group(1)
    partition = get_partition(region)
    session = _session_of(access_key, account, partition)
    if session is None:
        raise Answer(403, "The security token included in the request is invalid.")
    if request["headers"].get("x-amz-security-token") != session.session_token:
        raise Answer(403, "The security token included in the request is invalid.")
    if session.expiration.replace(tzinfo=None) < datetime.datetime.utcnow():
        raise Answer(403, "The security token included in the request is expired")
    amz_date = request["headers"].get("x-amz-date", "")
    try:
        signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise Answer(403, "Forbidden")
    if abs(datetime.datetime.utcnow() - signed_at) > MAX_SKEW:
        raise Answer(403, f"Signature expired: {amz_date} is now earlier than the allowed time window.")
    signed_headers = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    headers = {k: v for k, v in request["headers"].items() if k in signed_headers}
    url = f"https://{request['host']}{request['raw_path']}" + (f"?{request['query']}" if request["query"] else "")
    aws_request = AWSRequest(method=request["method"], url=url, data=body, headers=headers)
    aws_request.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(access_key, session.secret_access_key, session.session_token), "execute-api", scope.group(2))
    expected = auth.signature(auth.string_to_sign(aws_request, auth.canonical_request(aws_request)), aws_request)
    if authorization.split("Signature=")[1].split(",")[0] != expected or scope.group(3) != "execute-api":
        raise Answer(403, "The request signature we calculated does not match the signature you provided. "
                     "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
    principal = rig_judge.principal_of_key(access_key, account, partition)
    resource = invoke_arn(region, account, api_id, request["method"], request["path"])
    verdict = rig_judge.authorize(
        principal=principal.arn,
        account=account,
        operation="execute-api:Invoke",
        identity_policies=principal.identity_policies,
        boundary=principal.boundary,
        session_policy=principal.session_policy,
        checks=[{"action": "execute-api:Invoke", "resource": resource, "context": {
            "aws:PrincipalArn": session.role_arn,
            "aws:PrincipalAccount": account,
            "aws:SecureTransport": "true",
        }}],
    )
    if verdict["decision"] != "Allowed":
        raise Answer(403, f"User: {principal.arn} is not authorized to perform: execute-api:Invoke on resource: {resource}")
    role = iam_backends[account][partition].get_role_by_arn(session.role_arn)
    cognito = rig_identity.sessions.get(access_key)
    return {"iam": {
        "accessKey": access_key,
        "accountId": account,
        "callerId": f"{role.id}:{session.session_name}",
        "cognitoIdentity": None if cognito is None else {
            "amr": cognito["amr"],
            "identityId": cognito["identityId"],
            "identityPoolId": cognito["identityPoolId"],
        },
        "principalOrgId": None,
        "userArn": principal.arn,
        "userId": f"{role.id}:{session.session_name}",
    }}


def authorize_jwt(request, api, route) -> dict:
    authorizer = api.authorizers.get(route.authorizer_id)
    if authorizer is None:
        raise Answer(500, "Internal Server Error")
    token = request["headers"].get("authorization", "")
    if token.lower().startswith("bearer "):
        token = token[7:]
    unauthorized = {"www-authenticate": 'Bearer error="invalid_token"'}
    if not token:
        raise Answer(401, "Unauthorized", {"www-authenticate": "Bearer"})
    config = authorizer.jwt_config or {}
    issuer = config.get("Issuer") or config.get("issuer") or ""
    audiences = config.get("Audience") or config.get("audience") or []
    try:
        claims = rig_identity.verify_token(token, issuer, None)
    except Exception:  # noqa: BLE001 - any invalid token is 401, as API Gateway answers
        raise Answer(401, "Unauthorized", unauthorized)
    # API Gateway compares iss with the authorizer's issuer exactly: Auth0's has a trailing
    # slash, Okta's and Keycloak's have none.
    if claims.get("iss") != issuer:
        raise Answer(401, "Unauthorized", unauthorized)
    aud = claims.get("aud")
    aud = aud if isinstance(aud, list) else [aud, claims.get("client_id")]
    if not any(a in audiences for a in aud if a):
        raise Answer(401, "Unauthorized", unauthorized)
    scopes = str(claims.get("scope") or claims.get("scp") or "").split()
    wanted = route.authorization_scopes or []
    if wanted and not set(wanted) & set(scopes):
        raise Answer(403, "Forbidden")
    strings = {k: v if isinstance(v, str) else json.dumps(v) for k, v in claims.items()}
    return {"jwt": {"claims": strings, "scopes": scopes or None}}


def authorize_lambda(request, account: str, region: str, api_id: str, api, route, params) -> dict:
    """requestContext.authorizer for the integration, from the route's Lambda REQUEST
    authorizer, or an Answer refusing."""
    authorizer = api.authorizers.get(route.authorizer_id)
    if authorizer is None or authorizer.authorizer_type != "REQUEST":
        raise Answer(500, "Internal Server Error")
    sources = authorizer.identity_source or []
    if isinstance(sources, str):
        sources = sources.split(",")
    context = {"routeKey": route.route_key, "stage": STAGE, "apiId": api_id, "accountId": account,
               "httpMethod": request["method"], "path": request["path"], "requestId": request["id"],
               "identity.sourceIp": request["source_ip"]}
    values = rig_lambda_authorizer.identity_values(sources, request, context)
    if values is None:
        raise Answer(401, "Unauthorized")
    route_arn = invoke_arn(region, account, api_id, request["method"], request["path"])
    key = (account, api_id, authorizer.id, tuple(values))
    verdict = rig_lambda_authorizer.cache.get(key) if sources else None
    if verdict is None:
        function = _function(account, region, authorizer.authorizer_uri)
        source = f"arn:{get_partition(region)}:execute-api:{region}:{account}:{api_id}/authorizers/{authorizer.id}"
        if not _lambda_allows(function, account, region, source):
            raise Answer(500, "Internal Server Error")
        version = authorizer.auth_payload_format_version or "2.0"
        request_event = _event(version, request, account, api_id, route, params, None, b"")
        try:
            answer = run_function(function, rig_lambda_authorizer.event(version, request_event, route_arn, values))
            verdict = rig_lambda_authorizer.verdict(answer, bool(authorizer.enable_simple_response))
        except Exception:  # noqa: BLE001 - a failing or malformed authorizer is API Gateway's 500
            raise Answer(500, "Internal Server Error")
        if sources:
            rig_lambda_authorizer.cache.put(key, verdict, int(authorizer.auth_result_ttl or 0))
    if not verdict.allows(route_arn, account, get_partition(region)):
        raise Answer(403, "Forbidden")
    return verdict.for_integration()


# --- integrations -------------------------------------------------------------------------


def _function_arn(uri: str) -> str:
    match = re.search(r"functions/(arn:[^/]+)/invocations", uri or "")
    return match.group(1) if match else uri


def _code_dir(function) -> str:
    digest = hashlib.sha256(function.code_bytes or b"").hexdigest()
    with _code_lock:
        path = _code_dirs.get(digest)
        if path is None:
            path = os.path.join(_code_root, digest)
            if not os.path.isdir(path):
                with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as zipped:
                    zipped.extractall(path)
            _code_dirs[digest] = path
    return path


def run_function(function, event: dict):
    """The function's answer to `event`, running its own code; raises on a failure."""
    runtime = function.run_time or ""
    if runtime.startswith("nodejs"):
        command = ["node", os.path.join(RUNTIMES, "node.mjs")]
    elif runtime.startswith("python"):
        command = ["python3", os.path.join(RUNTIMES, "python.py")]
    else:
        raise RuntimeError(f"the rig runs nodejs and python functions, not {runtime}")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_REGION": function.region,
        "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
        **(function.environment_vars or {}),
    }
    with _invocations_lock:
        _invocations[function.function_arn] = _invocations.get(function.function_arn, 0) + 1
    done = subprocess.run(
        command + [_code_dir(function), function.handler or "index.handler"],
        input=json.dumps(event).encode(),
        capture_output=True,
        timeout=max(int(function.timeout or 3), 10),
        env=env,
    )
    out = done.stdout.decode("utf-8", "replace")
    marker = "\0authedapi-rig-result\0\n"
    if marker not in out:
        raise RuntimeError(f"the function exited without an answer: {done.stderr.decode()[-500:]}")
    outcome = json.loads(out.rsplit(marker, 1)[1].splitlines()[0])
    if "error" in outcome:
        raise RuntimeError(f"{outcome['error']['errorType']}: {outcome['error']['errorMessage']}")
    return outcome["result"]


def _function(account: str, region: str, uri: str):
    """The Lambda function a Lambda URI names, or API Gateway's 500."""
    try:
        return lambda_backends[account][region].get_function(_function_arn(uri))
    except Exception:  # noqa: BLE001 - a missing function is API Gateway's 500
        raise Answer(500, "Internal Server Error")


def _lambda_allows(function, account: str, region: str, source_arn: str) -> bool:
    try:
        policy = function.policy.get_policy()["Policy"]
    except Exception:  # noqa: BLE001 - no policy: nobody may invoke it
        return False
    verdict = rig_judge.authorize(
        principal="apigateway.amazonaws.com",
        account=account,
        operation="lambda:InvokeFunction",
        checks=[{
            "action": "lambda:InvokeFunction",
            "resource": function.function_arn,
            "resourcePolicy": policy,
            "context": {"aws:SourceArn": source_arn, "aws:SourceAccount": account},
        }],
    )
    return verdict["decision"] == "Allowed"


def _event(version: str, request, account, api_id, route, params, authorizer, body: bytes) -> dict:
    now = time.time()
    text = body.decode("utf-8", "replace") if body else None
    binary = False
    if body:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            text, binary = base64.b64encode(body).decode(), True
    query = parse_qsl(request["query"], keep_blank_values=True)
    request_id = request["id"]
    if version == "1.0":
        identity = (authorizer or {}).get("iam") or {}
        cognito = identity.get("cognitoIdentity") or {}
        return {
            "version": "1.0",
            "resource": route.route_key.partition(" ")[2] or "$default",
            "path": request["path"],
            "httpMethod": request["method"],
            "headers": {k: v for k, v in request["headers"].items()},
            "multiValueHeaders": {k: [v] for k, v in request["headers"].items()},
            "queryStringParameters": dict(query) or None,
            "multiValueQueryStringParameters": {k: [v for q, v in query if q == k] for k, _ in query} or None,
            "requestContext": {
                "accountId": account, "apiId": api_id, "httpMethod": request["method"],
                "path": f"/{STAGE}{request['path']}", "protocol": "HTTP/1.1", "requestId": request_id,
                "requestTimeEpoch": int(now * 1000), "resourcePath": route.route_key.partition(" ")[2],
                "stage": STAGE,
                "identity": {
                    "accessKey": identity.get("accessKey"), "accountId": identity.get("accountId"),
                    "caller": identity.get("callerId"), "cognitoIdentityId": cognito.get("identityId"),
                    "cognitoIdentityPoolId": cognito.get("identityPoolId"), "sourceIp": request["source_ip"],
                    "user": identity.get("userId"), "userAgent": request["headers"].get("user-agent"),
                    "userArn": identity.get("userArn"),
                },
                "authorizer": _authorizer_1_0(authorizer),
            },
            "pathParameters": params or None,
            "stageVariables": None,
            "body": text,
            "isBase64Encoded": binary,
        }
    event = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": request["path"],
        "rawQueryString": request["query"],
        "headers": dict(request["headers"]),
        "requestContext": {
            "accountId": account,
            "apiId": api_id,
            "domainName": request["host"],
            "domainPrefix": api_id,
            "http": {
                "method": request["method"], "path": request["path"], "protocol": "HTTP/1.1",
                "sourceIp": request["source_ip"], "userAgent": request["headers"].get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": STAGE,
            "time": datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": binary,
    }
    if "cookie" in request["headers"]:
        event["cookies"] = [c.strip() for c in request["headers"]["cookie"].split(";")]
    if query:
        event["queryStringParameters"] = {k: ",".join(v for q, v in query if q == k) for k, _ in query}
    if params:
        event["pathParameters"] = params
    if authorizer:
        event["requestContext"]["authorizer"] = authorizer
    if text is not None:
        event["body"] = text
    return event


def _authorizer_1_0(authorizer: dict | None):
    """requestContext.authorizer in payload 1.0: a JWT's claims, or a Lambda authorizer's
    context with its principalId beside it."""
    authorizer = authorizer or {}
    if "lambda" in authorizer:
        flat = dict(authorizer["lambda"])
        if "principalId" in authorizer:
            flat["principalId"] = authorizer["principalId"]
        return flat
    return authorizer.get("jwt")


def _lambda_answer(version: str, result):
    """(status, headers, body bytes) API Gateway makes of a Lambda proxy answer."""
    if version == "2.0" and not (isinstance(result, dict) and "statusCode" in result):
        return 200, {"content-type": "application/json"}, json.dumps(result).encode(), []
    if not isinstance(result, dict) or "statusCode" not in result:
        raise RuntimeError("a payload 1.0 answer needs a statusCode")
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for k, values in (result.get("multiValueHeaders") or {}).items():
        headers[k.lower()] = ",".join(str(v) for v in values)
    headers.setdefault("content-type", "text/plain; charset=utf-8")
    body = result.get("body")
    body = b"" if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body)
    cookies = result.get("cookies") or []
    return int(result["statusCode"]), headers, body, cookies


def _private_target_url(account: str, region: str, integration, request) -> str:
    """Where a private integration's request goes: the stand-in of its listener or Cloud
    Map service, with the request's path and query (API Gateway forwards them as sent)."""
    backend = dict.get(apigatewayv2_backends[account], region)
    link = None if backend is None else backend.vpc_links.get(integration.connection_id)
    if link is None:
        raise Answer(500, "Internal Server Error")
    base = rig_vpc_links.stand_in_url(account, region, integration.integration_uri)
    if base is None:
        raise Answer(503, "Service Unavailable")
    query = f"?{request['query']}" if request["query"] else ""
    return base.rstrip("/") + request["path"] + query


def integrate(request, account, region, api_id, api, route, params, authorizer, body: bytes):
    integration_id = (route.target or "").removeprefix("integrations/")
    integration = api.integrations.get(integration_id)
    if integration is None:
        raise Answer(500, "Internal Server Error")
    if integration.integration_type == "HTTP_PROXY":
        url = integration.integration_uri
        if integration.connection_type == "VPC_LINK":
            url = _private_target_url(account, region, integration, request)
        forwarded = urllib.request.Request(
            url,
            data=body or None,
            method=request["method"],
            headers={k: v for k, v in request["headers"].items() if k not in ("host", "authorization", "content-length")},
        )
        try:
            with urllib.request.urlopen(forwarded, timeout=30) as r:
                return r.status, dict(r.headers.items()), r.read(), []
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers.items()), e.read(), []
        except OSError:
            raise Answer(500, "Internal Server Error")
    function = _function(account, region, integration.integration_uri)
    source = invoke_arn(region, account, api_id, request["method"], request["path"])
    if not _lambda_allows(function, account, region, source):
        raise Answer(500, "Internal Server Error")
    version = integration.payload_format_version or "2.0"
    event = _event(version, request, account, api_id, route, params, authorizer, body)
    try:
        return _lambda_answer(version, run_function(function, event))
    except Exception:  # noqa: BLE001 - a failing function is API Gateway's 500
        raise Answer(500, "Internal Server Error")


# --- CORS and the WSGI side --------------------------------------------------------------


def _cors_headers(api, origin: str | None, preflight: bool) -> dict:
    cors = api.cors_configuration or {}
    if not cors or not origin:
        return {}
    origins = cors.get("allowOrigins") or cors.get("AllowOrigins") or []
    if "*" not in origins and origin not in origins:
        return {}
    headers = {"access-control-allow-origin": "*" if "*" in origins else origin}
    if cors.get("allowCredentials") or cors.get("AllowCredentials"):
        headers["access-control-allow-credentials"] = "true"
    if preflight:
        methods = cors.get("allowMethods") or cors.get("AllowMethods") or []
        allowed_headers = cors.get("allowHeaders") or cors.get("AllowHeaders") or []
        if methods:
            headers["access-control-allow-methods"] = ",".join(methods)
        if allowed_headers:
            headers["access-control-allow-headers"] = ",".join(allowed_headers)
        max_age = cors.get("maxAge") or cors.get("MaxAge")
        if max_age is not None:
            headers["access-control-max-age"] = str(max_age)
    else:
        expose = cors.get("exposeHeaders") or cors.get("ExposeHeaders") or []
        if expose:
            headers["access-control-expose-headers"] = ",".join(expose)
    return headers


def serve(environ, api_id: str, region: str):
    """(status, headers, body, cookies) of one request to an API's $default stage."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ.get(rig_judge.RAW_BODY)
    if body is None:
        body = environ["wsgi.input"].read(length) if length else b""
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    if length:
        headers["content-length"] = str(length)
    request = {
        "id": str(uuid.uuid4()),
        "method": environ["REQUEST_METHOD"],
        "host": environ.get("HTTP_HOST", ""),
        "path": environ.get("PATH_INFO") or "/",
        "raw_path": environ.get("RAW_URI", environ.get("PATH_INFO") or "/").split("?")[0],
        "query": environ.get("QUERY_STRING", ""),
        "headers": headers,
        "source_ip": environ.get("REMOTE_ADDR", "127.0.0.1"),
    }
    account, api = find_api(api_id, region)
    if api is None or api.disable_execute_api_endpoint:
        status, message = (403, "Forbidden") if api is not None else (404, "Not Found")
        return status, {"content-type": "application/json"}, _message(message), []
    origin = headers.get("origin")
    if request["method"] == "OPTIONS" and origin and "access-control-request-method" in headers and api.cors_configuration:
        return 204, _cors_headers(api, origin, preflight=True), b"", []
    cors = _cors_headers(api, origin, preflight=False)
    route, params = select_route(api, request["method"], request["path"])
    # Which route answered, as API Gateway's access log's $context.routeKey says (the rig
    # shows it on every answer, for tests to tell routing from authorization).
    if route is not None:
        cors = {**cors, "x-rig-route-key": route.route_key}
    try:
        if route is None:
            raise Answer(404, "Not Found")
        authorizer = None
        if route.authorization_type == "AWS_IAM":
            authorizer = authorize_iam(request, account, region, api_id, body)
        elif route.authorization_type == "JWT":
            authorizer = authorize_jwt(request, api, route)
        elif route.authorization_type == "CUSTOM":
            authorizer = authorize_lambda(request, account, region, api_id, api, route, params)
        status, out_headers, out_body, cookies = integrate(request, account, region, api_id, api, route, params, authorizer, body)
    except Answer as answer:
        return answer.status, {"content-type": "application/json", **answer.headers, **cors}, _message(answer.message), []
    return status, {**out_headers, **cors}, out_body, cookies


def _message(text: str) -> bytes:
    """API Gateway's error body, spelled as it spells it: {"message":"Forbidden"}."""
    return json.dumps({"message": text}, separators=(",", ":")).encode()


def data_plane(app):
    """WSGI middleware: execute-api hosts to the data plane, the rest to moto."""
    def wrapped(environ, start_response):
        match = HOST.match(environ.get("HTTP_HOST", ""))
        if match is None:
            return app(environ, start_response)
        status, headers, body, cookies = serve(environ, match["api"], match["region"])
        pairs = [(k, v) for k, v in headers.items() if k.lower() not in ("content-length", "transfer-encoding", "connection")]
        pairs += [("set-cookie", c) for c in cookies]
        pairs.append(("content-length", str(len(body))))
        pairs.append(("apigw-requestid", str(uuid.uuid4())))
        start_response(f"{status} {_reason(status)}", pairs)
        return [body]
    return wrapped


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
