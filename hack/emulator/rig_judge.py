"""The IAM judge's front half: every signed request the emulator receives is authorized
the way AWS authorizes it before moto acts on it.

For each request: who is calling (the access key's IAM user or role session, with its
signature checked), what AWS authorizes for that call (`rig_authorization`: actions,
resource ARNs, request context), which policies apply (the principal's inline and
managed policies, its permissions boundary, the session policy, resource policies), and
then the judge process (`hack/iam-judge/judge.mjs`, a maintained IAM policy simulator)
decides. A denial is answered as AWS answers it in that service's protocol, and moto
never sees the request.

Who is not judged:
  * the account's administrator, the access key "AKIARIG0" + the account id: the rig
    and the tests use it to set accounts up and to look at them (like the account root);
  * calls AWS serves without credentials (Cognito's GetId, GetCredentialsForIdentity).
Everything else is judged, and a call whose authorization the rig does not know is
refused (fail closed), so a new AWS call can never slip through unjudged.

The judge is on when AUTHEDAPI_JUDGE_URL names the judge process (the rig always sets it).
"""

import json
import os
import re
import threading
import http.client
from urllib.parse import urlparse

from moto.core.exceptions import InvalidClientTokenIdError, SignatureDoesNotMatchError
from moto.core.responses import BaseResponse
from moto.iam.access_control import (
    AssumedRoleAccessKey,
    CreateAccessKeyFailure,
    IAMRequest,
    IAMUserAccessKey,
)
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition

import rig_authorization
from rig_authorization import UnknownCall

ADMIN_ACCESS_KEY = re.compile(r"AKIARIG0(\d{12})")
SIGNING_SCOPE = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")

_local = threading.local()


def judge_url() -> str | None:
    return os.environ.get("AUTHEDAPI_JUDGE_URL")


def _post(url: str, body: dict) -> dict:
    """POST to the judge over a kept-alive connection (one per emulator thread)."""
    parsed = urlparse(url)
    for attempt in (1, 2):
        conn = getattr(_local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
            _local.conn = conn
        try:
            conn.request("POST", "/authorize", json.dumps(body), {"content-type": "application/json"})
            response = conn.getresponse()
            text = response.read()
            if response.status != 200:
                raise RuntimeError(f"the IAM judge answered {response.status}: {text[:500]!r}")
            return json.loads(text)
        except (ConnectionError, http.client.HTTPException, OSError):
            _local.conn = None
            conn.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def authorize(principal: str, account: str, operation: str, checks: list[dict],
              identity_policies=None, boundary=None, session_policy=None) -> dict:
    """Ask the judge about `checks` for `principal` (an ARN, or a service principal such as
    cognito-identity.amazonaws.com); its verdict. Fails closed when the judge is off."""
    url = judge_url()
    if not url:
        return {"decision": "Error", "failed": {"reason": "the IAM judge is not configured"}}
    return _post(url, {
        "principal": principal,
        "accountId": account,
        "operation": operation,
        "identityPolicies": identity_policies or [],
        "permissionBoundary": boundary,
        "sessionPolicy": session_policy,
        "checks": checks,
    })


def trusts(principal: str, account: str, role, context: dict) -> bool:
    """Whether `role`'s trust policy lets `principal` (a federated provider's ARN, or
    cognito-identity.amazonaws.com) assume it with web identity, in `context`."""
    verdict = authorize(
        principal=principal,
        account=account,
        operation="sts:AssumeRoleWithWebIdentity",
        checks=[{
            "action": "sts:AssumeRoleWithWebIdentity",
            "resource": role.arn,
            "context": context,
            "resourcePolicy": json.loads(role.assume_role_policy_document),
        }],
    )
    return verdict["decision"] == "Allowed"


def principal_of_key(access_key_id: str, account: str, partition: str) -> "Principal | None":
    """The role session or user behind an access key in `account`, with its policies."""
    backend = iam_backends[account][partition]
    for assumed in sts_backends[account][partition].assumed_roles:
        if assumed.access_key_id == access_key_id:
            key = AssumedRoleAccessKey.__new__(AssumedRoleAccessKey)
            key.account_id, key.partition = account, partition
            key._access_key_id = access_key_id
            key._owner_role_name = assumed.role_arn.split("/")[-1]
            key._session_name = assumed.session_name
            return _role_principal(backend, key, account, partition)
    return None


# --- who is calling ----------------------------------------------------------------------


class Principal:
    """An authenticated caller: its ARN and the policies IAM evaluates for it."""

    def __init__(self, arn, account, identity_policies, boundary, session_policy, tags):
        self.arn = arn
        self.account = account
        self.identity_policies = identity_policies
        self.boundary = boundary
        self.session_policy = session_policy
        self.tags = tags


def _document(text_or_dict):
    if isinstance(text_or_dict, dict):
        return text_or_dict
    return json.loads(text_or_dict)


def _default_document(policy) -> dict:
    """The default version's document of a managed policy."""
    for version in policy.versions:
        if version.version_id == policy.default_version_id:
            return _document(version.document)
    return {"Version": "2012-10-17", "Statement": []}


def _role_principal(backend, key: AssumedRoleAccessKey, account: str, partition: str) -> Principal:
    role = backend.get_role(key._owner_role_name)
    policies = [
        {"name": f"{role.name}/inline/{name}", "policy": _document(doc)}
        for name, doc in role.policies.items()
    ]
    for arn, managed in role.managed_policies.items():
        policies.append({"name": f"{role.name}/managed/{managed.name}", "policy": _default_document(managed)})
    boundary = None
    if role.permissions_boundary_arn:
        managed = backend.managed_policies.get(role.permissions_boundary_arn)
        if managed is not None:
            boundary = {"name": role.permissions_boundary_arn, "policy": _default_document(managed)}
        else:
            # A boundary that names no policy allows nothing.
            boundary = {"name": role.permissions_boundary_arn, "policy": {"Version": "2012-10-17", "Statement": []}}
    session_policy = None
    for assumed in sts_backends[account][partition].assumed_roles:
        if assumed.access_key_id == key._access_key_id and assumed.policy:
            session_policy = _document(assumed.policy)
    tags = {t["Key"]: t["Value"] for t in (role.tags.values() if isinstance(role.tags, dict) else role.tags or [])}
    return Principal(key.arn, account, policies, boundary, session_policy, tags)


def _user_principal(backend, key: IAMUserAccessKey, account: str) -> Principal:
    user = backend.get_user(key._owner_user_name)
    policies = [
        {"name": f"{user.name}/inline/{name}", "policy": _document(doc)}
        for name, doc in user.policies.items()
    ]
    for arn, managed in user.managed_policies.items():
        policies.append({"name": f"{user.name}/managed/{managed.name}", "policy": _default_document(managed)})
    return Principal(key.arn, account, policies, None, None, {})


RAW_BODY = "rig.raw_body"


def keep_raw_bodies(app):
    """WSGI middleware: keep each request's body bytes as sent (werkzeug parses forms
    from the stream, and re-encoding the parsed form is not what the client signed)."""
    import io

    def wrapped(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ[RAW_BODY] = body
        environ["wsgi.input"] = io.BytesIO(body)
        return app(environ, start_response)

    return wrapped


class SignedRequest(IAMRequest):
    """moto's SigV4 check, hashing the body exactly as it was sent."""

    def __init__(self, raw_body: bytes, **kwargs):
        self._raw_body = raw_body
        super().__init__(**kwargs)

    def _create_aws_request(self):
        request = super()._create_aws_request()
        request.data = self._raw_body
        return request


def authenticate(response: BaseResponse):
    """The caller of a signed request, or an HTTPException as AWS answers a bad one."""
    account = response.current_account
    partition = get_partition(response.region)
    iam_request = SignedRequest(
        raw_body=response.normalized_request.environ.get(RAW_BODY, b""),
        account_id=account,
        method=response.method,
        path=_signed_path(response),
        data=response.data,
        body=response.raw_body,
        headers=response.headers,
        action=response._get_action(),
    )
    iam_request.check_signature()
    key = iam_request._access_key
    backend = iam_backends[account][partition]
    if isinstance(key, AssumedRoleAccessKey):
        return _role_principal(backend, key, account, partition)
    return _user_principal(backend, key, account)


def _signed_path(response: BaseResponse) -> str:
    parsed = urlparse(response.uri)
    path = response.raw_path
    if parsed.query:
        path += "?" + parsed.query
    return path


# --- answers in each protocol --------------------------------------------------------------


def _protocol(service: str) -> str:
    return {
        "apigateway": "rest-json",
        "lambda": "lambda-rest-json",
        "cognito-identity": "json",
        "iam": "query",
        "sts": "query",
    }.get(service, "query")


def error(service: str, status: int, code: str, message: str):
    """(status, headers, body) of an AWS error in `service`'s wire protocol."""
    protocol = _protocol(service)
    if protocol == "rest-json":
        body = json.dumps({"message": message})
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
    elif protocol == "lambda-rest-json":
        body = json.dumps({"Type": "User", "message": message})
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
    elif protocol == "json":
        body = json.dumps({"__type": code, "message": message})
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code}
    else:
        namespace = {
            "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
            "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
        }.get(service, f"https://{service}.amazonaws.com/doc/")
        escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        body = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{escaped}</Message></Error><RequestId>rig-judge</RequestId></ErrorResponse>"
        )
        headers = {"Content-Type": "text/xml"}
    headers["status"] = str(status)
    return status, headers, body


def access_denied(service: str, principal: str, check: dict):
    resource = check["resource"]
    on = "" if resource == "*" else f" on resource: {resource}"
    message = f"User: {principal} is not authorized to perform: {check['action']}{on} {check['reason']}"
    if _protocol(service) == "query":
        return error(service, 403, "AccessDenied", message)
    status = 400 if _protocol(service) == "json" else 403
    return error(service, status, "AccessDeniedException", message)


def _from_http_exception(service: str, exc):
    code = getattr(exc, "error_type", "AccessDenied")
    message = getattr(exc, "message", str(exc))
    status = getattr(exc, "code", 403)
    if _protocol(service) != "query" and code == "AccessDenied":
        code = "AccessDeniedException"
    return error(service, status, code, message)


# --- the hook -----------------------------------------------------------------------------


def judge(response: BaseResponse):
    """None when the request may go on to moto; else AWS's answer refusing it."""
    url = judge_url()
    if not url:
        return None
    authorization = response.headers.get("Authorization", "")
    scope = SIGNING_SCOPE.search(authorization)
    operation = response._get_action()
    if scope is None:
        if rig_authorization.is_public(response, operation):
            return None
        service = rig_authorization.service_of(response)
        return error(service, 403, "MissingAuthenticationTokenException" if _protocol(service) != "query" else "MissingAuthenticationToken",
                     "Request is missing Authentication Token")
    access_key, service = scope.group(1), scope.group(3)
    if ADMIN_ACCESS_KEY.fullmatch(access_key):
        return None
    try:
        principal = authenticate(response)
    except (InvalidClientTokenIdError, SignatureDoesNotMatchError) as exc:
        return _from_http_exception(service, exc)
    except (CreateAccessKeyFailure, KeyError):
        return _from_http_exception(service, InvalidClientTokenIdError())
    if service == "sts" and operation == "GetCallerIdentity":
        return None  # AWS answers it for any valid credentials, whatever the policies say
    try:
        checks = rig_authorization.checks_for(service, operation, response, principal)
    except UnknownCall as exc:
        return error(service, 403, "AccessDenied" if _protocol(service) == "query" else "AccessDeniedException",
                     f"the rig's IAM judge does not know how AWS authorizes {service}:{operation}: {exc} "
                     "(add it to hack/emulator/rig_authorization.py)")
    try:
        verdict = _post(url, {
            "principal": principal.arn,
            "accountId": principal.account,
            "operation": f"{service}:{operation}",
            "identityPolicies": principal.identity_policies,
            "permissionBoundary": principal.boundary,
            "sessionPolicy": principal.session_policy,
            "checks": [check.to_json(principal) for check in checks],
        })
    except Exception as exc:  # noqa: BLE001 - the rig is broken: say so, never allow
        return error(service, 500, "InternalFailure", f"the rig's IAM judge failed: {exc}")
    if verdict["decision"] == "Allowed":
        return None
    return access_denied(service, principal.arn, verdict["failed"])


def install() -> None:
    moto_call_action = BaseResponse.call_action

    def call_action(self: BaseResponse):
        try:
            refusal = judge(self)
        except Exception:  # noqa: BLE001 - a bug of the rig: answer it, never allow
            import traceback

            service = rig_authorization.service_of(self)
            return error(service, 500, "InternalFailure", "the rig's IAM judge failed: " + traceback.format_exc())
        if refusal is not None:
            return refusal
        return moto_call_action(self)

    BaseResponse.call_action = call_action
