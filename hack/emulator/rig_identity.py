"""Cognito's credential flow as AWS runs it: GetId and GetCredentialsForIdentity verify the
ID token, choose the role, have STS judge the role's trust policy, and issue credentials
bound to that role's session.

  * The token: a JWT signed by a key of its issuer's JWKS (fetched from the issuer's
    discovery document), `iss` the provider the pool federates (an IAM OIDC provider in
    the pool's account), `aud` one of that provider's client ids, not expired.
  * Unauthenticated identities only when the pool allows them.
  * The role: the pool's role mapping for the provider (type Rules: claim, match type,
    first match wins; no match: AmbiguousRoleResolution decides), else the pool's
    authenticated role (unauthenticated role for unauthenticated identities).
  * Trust: sts:AssumeRoleWithWebIdentity on that role by cognito-identity.amazonaws.com,
    with cognito-identity.amazonaws.com:aud = the pool id, :amr = [authenticated, provider,
    ...] and :sub = the identity id, judged by the IAM judge against the role's trust
    policy. Refused: InvalidIdentityPoolConfigurationException, as Cognito answers.
  * Credentials: a session of that role (moto's STS state), valid one hour, which the IAM
    judge and the execute-api data plane recognise like any role session.

Issuers are reached at the loopback URL the rig registers for them by name: the host and
path of the issuer, as its IAM OIDC provider and Cognito's Logins name it (POST
/_rig/issuers {"domain": "rig.okta.com/oauth2/default", "url": ...}); the discovery document
is at <url><path>/.well-known/openid-configuration. Nothing else differs from AWS.
"""

import datetime
import json
import ssl
import threading
import time
import urllib.request
import uuid

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from moto.cognitoidentity.models import cognitoidentity_backends
from moto.cognitoidentity.responses import CognitoIdentityResponse
from moto.core.exceptions import JsonRESTError
from moto.iam.models import iam_backends
from moto.sts.models import AssumedRole, sts_backends
from moto.utilities.utils import get_partition

import rig_judge

COGNITO = "cognito-identity.amazonaws.com"
SESSION_SECONDS = 3600

_lock = threading.Lock()
_issuers: dict[str, tuple[str, ssl.SSLContext | None]] = {}  # issuer name (host and path) -> base URL, TLS trust
_jwks: dict[str, tuple[float, KeySet]] = {}
# (pool id, provider, sub) -> identity id; identity id -> what it is.
_identities: dict[tuple, str] = {}
_identity_info: dict[str, dict] = {}
# Access key of a Cognito session -> {identityId, identityPoolId, amr, account}.
sessions: dict[str, dict] = {}


class NotAuthorized(JsonRESTError):
    def __init__(self, message: str):
        super().__init__("NotAuthorizedException", message)


class NotFound(JsonRESTError):
    def __init__(self, message: str):
        super().__init__("ResourceNotFoundException", message)


class InvalidConfiguration(JsonRESTError):
    def __init__(self, message: str):
        super().__init__("InvalidIdentityPoolConfigurationException", message)


def issuer_name(name: str) -> str:
    """An issuer's name as AWS compares it: the host without case, the path as it is."""
    host, slash, path = name.removeprefix("https://").rstrip("/").partition("/")
    return host.lower() + slash + path


def register_issuer(name: str, url: str, ca: str | None = None) -> None:
    """Reach the issuer `name` at `url`; over HTTPS trusting `ca` (PEM) when given."""
    trust = ssl.create_default_context(cadata=ca) if ca else None
    with _lock:
        _issuers[issuer_name(name)] = (url.rstrip("/"), trust)
        _jwks.pop(issuer_name(name), None)


def keys_of(name: str) -> KeySet | None:
    """The JWKS of the issuer `name` (host and path), from its discovery document; None when
    the rig cannot reach it."""
    with _lock:
        cached = _jwks.get(name)
        base, trust = _issuers.get(name, (None, None))
    if cached and cached[0] > time.time():
        return cached[1]
    if base is None:
        return None
    host, _, path = name.partition("/")
    path = f"/{path}" if path else ""
    with urllib.request.urlopen(f"{base}{path}/.well-known/openid-configuration", timeout=10, context=trust) as r:
        discovery = json.load(r)
    jwks_url = discovery["jwks_uri"].replace(f"https://{host}", base, 1)
    with urllib.request.urlopen(jwks_url, timeout=10, context=trust) as r:
        keys = KeySet.import_key_set(json.load(r))
    with _lock:
        _jwks[name] = (time.time() + 60, keys)
    return keys


def verify_token(token: str, name: str, audiences: list[str] | None) -> dict:
    """The claims of a valid ID token from the issuer `name` (host and path) for one of
    `audiences` (None: any). Its `iss` is compared as Cognito compares it with the provider
    name: without scheme or trailing slash."""
    name = issuer_name(name)
    if token.count(".") != 2:
        raise NotAuthorized("Invalid login token. Not a valid OpenId Connect identity token.")
    keys = keys_of(name)
    if keys is None:
        raise NotAuthorized(f"Invalid login token. Couldn't reach the issuer https://{name} to verify the token.")
    try:
        claims = jwt.decode(token, keys, algorithms=["RS256"]).claims
    except (JoseError, ValueError):
        raise NotAuthorized("Invalid login token. Couldn't verify signed token.")
    if issuer_name(str(claims.get("iss", ""))) != name:
        raise NotAuthorized("Invalid login token. Issuer doesn't match providerName")
    aud = claims.get("aud")
    aud = aud if isinstance(aud, list) else [aud]
    if audiences is not None and not any(a in audiences for a in aud):
        raise NotAuthorized("Invalid login token. Incorrect token audience.")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp < time.time():
        raise NotAuthorized(f"Invalid login token. Token expired: {int(exp or 0)} >= {int(time.time())}")
    return claims


def _find_pool(pool_id: str):
    region = (pool_id or "").split(":")[0]
    for account, backends in list(cognitoidentity_backends.items()):
        backend = dict.get(backends, region)
        if backend is not None and pool_id in backend.identity_pools:
            return account, region, backend.identity_pools[pool_id]
    raise NotFound(f"IdentityPool '{pool_id}' not found.")


def _verify_logins(account: str, region: str, pool, logins: dict) -> list[tuple[str, dict]]:
    """(provider, claims) of every login, each verified as Cognito verifies it."""
    iam = iam_backends[account][get_partition(region)]
    verified = []
    for provider, token in (logins or {}).items():
        arn = f"arn:{get_partition(region)}:iam::{account}:oidc-provider/{provider}"
        if arn not in (pool.open_id_connect_provider_arns or []):
            raise NotAuthorized("Token is not from a supported provider of this identity pool.")
        oidc = iam.open_id_providers.get(arn)
        if oidc is None:
            raise InvalidConfiguration("Invalid identity pool configuration. Check assigned IAM roles for this pool.")
        verified.append((provider, verify_token(token, provider, list(oidc.client_id_list))))
    return verified


def get_id(self: CognitoIdentityResponse) -> str:
    account, region, pool = _find_pool(self._get_param("IdentityPoolId"))
    logins = self._get_param("Logins") or {}
    verified = _verify_logins(account, region, pool, logins)
    if not verified:
        if not pool.allow_unauthenticated_identities:
            raise NotAuthorized("Unauthenticated access is not supported for this identity pool.")
        identity = f"{region}:{uuid.uuid4()}"
        _identity_info[identity] = {"pool": pool.identity_pool_id, "account": account, "region": region, "login": None}
        return json.dumps({"IdentityId": identity})
    provider, claims = verified[0]
    key = (pool.identity_pool_id, provider, claims["sub"])
    with _lock:
        identity = _identities.get(key)
        if identity is None:
            identity = f"{region}:{uuid.uuid4()}"
            _identities[key] = identity
            _identity_info[identity] = {"pool": pool.identity_pool_id, "account": account, "region": region, "login": (provider, claims["sub"])}
    return json.dumps({"IdentityId": identity})


def _matches(claim_value, match_type: str, value: str) -> bool:
    values = claim_value if isinstance(claim_value, list) else [claim_value]
    values = [v if isinstance(v, str) else json.dumps(v) for v in values if v is not None]
    if match_type == "Equals":
        return value in values
    if match_type == "Contains":
        return any(value in v for v in values)
    if match_type == "StartsWith":
        return any(v.startswith(value) for v in values)
    if match_type == "NotEqual":
        return bool(values) and value not in values
    return False


def choose_role(pool, provider: str | None, claims: dict | None) -> str:
    """The role ARN Cognito hands this identity."""
    roles = getattr(pool, "authedapi_roles", {}) or {}
    if provider is None:
        role = roles.get("unauthenticated")
        if not role:
            raise InvalidConfiguration("Invalid identity pool configuration. Check assigned IAM roles for this pool.")
        return role
    mapping = (getattr(pool, "authedapi_role_mappings", {}) or {}).get(provider)
    if mapping and mapping.get("Type") == "Rules":
        for rule in (mapping.get("RulesConfiguration") or {}).get("Rules") or []:
            if rule.get("Claim") in claims and _matches(claims[rule["Claim"]], rule.get("MatchType"), rule.get("Value", "")):
                return rule["RoleARN"]
        if mapping.get("AmbiguousRoleResolution") == "Deny":
            raise NotAuthorized("Unable to determine a role: no rule of the identity pool's role mapping matched, and ambiguous roles are denied.")
    role = roles.get("authenticated")
    if not role:
        raise InvalidConfiguration("Invalid identity pool configuration. Check assigned IAM roles for this pool.")
    return role


def _assume_as_cognito(account: str, region: str, role_arn: str, context: dict) -> AssumedRole:
    """STS AssumeRoleWithWebIdentity by Cognito, the role's trust policy judged."""
    partition = get_partition(region)
    iam = iam_backends[account][partition]
    try:
        role = iam.get_role_by_arn(role_arn)
    except Exception:  # noqa: BLE001 - a missing role is a pool misconfiguration
        raise InvalidConfiguration("Invalid identity pool configuration. Check assigned IAM roles for this pool.")
    if not rig_judge.trusts(COGNITO, account, role, context):
        raise InvalidConfiguration("Invalid identity pool configuration. Check assigned IAM roles for this pool.")
    key = iam.create_temp_access_key()
    key.role_arn = role.arn
    session = AssumedRole(
        account_id=account,
        region_name=region,
        access_key=key,
        role_session_name="CognitoIdentityCredentials",
        role_arn=role.arn,
        policy=None,
        duration=SESSION_SECONDS,
        external_id=None,
    )
    sts_backends[account][partition].assumed_roles.append(session)
    return session


def get_credentials_for_identity(self: CognitoIdentityResponse) -> str:
    identity = self._get_param("IdentityId")
    info = _identity_info.get(identity)
    if info is None:
        raise NotFound(f"Identity '{identity}' not found.")
    account, region, pool = _find_pool(info["pool"])
    logins = self._get_param("Logins") or {}
    if info["login"] is None:
        if not pool.allow_unauthenticated_identities:
            raise NotAuthorized("Unauthenticated access is not supported for this identity pool.")
        provider, claims, amr = None, None, ["unauthenticated"]
    else:
        verified = _verify_logins(account, region, pool, logins)
        match = [(p, c) for p, c in verified if (p, c.get("sub")) == info["login"]]
        if not match:
            raise NotAuthorized("Logins don't match. Please include at least one valid login for this identity or identity pool.")
        provider, claims = match[0]
        amr = ["authenticated", provider, f"{provider}:{pool.identity_pool_id}:{claims['sub']}"]
    role_arn = choose_role(pool, provider, claims)
    session = _assume_as_cognito(account, region, role_arn, {
        "cognito-identity.amazonaws.com:aud": pool.identity_pool_id,
        "cognito-identity.amazonaws.com:amr": amr,
        "cognito-identity.amazonaws.com:sub": identity,
    })
    sessions[session.access_key_id] = {
        "identityId": identity,
        "identityPoolId": pool.identity_pool_id,
        "amr": amr,
        "account": account,
    }
    expiration = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=SESSION_SECONDS)
    return json.dumps({
        "IdentityId": identity,
        "Credentials": {
            "AccessKeyId": session.access_key_id,
            "SecretKey": session.secret_access_key,
            "SessionToken": session.session_token,
            "Expiration": expiration.timestamp(),
        },
    })


def expire_session(access_key_id: str) -> None:
    """Make the role session of `access_key_id` one that expired a minute ago."""
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    for account_backends in list(sts_backends.values()):
        for backend in list(account_backends.values()):
            for session in backend.assumed_roles:
                if session.access_key_id == access_key_id:
                    session.expiration = past.replace(tzinfo=None)


def install() -> None:
    CognitoIdentityResponse.get_id = get_id
    CognitoIdentityResponse.get_credentials_for_identity = get_credentials_for_identity
