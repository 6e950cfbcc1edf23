"""STS AssumeRoleWithWebIdentity as AWS runs it for IRSA: the token verified against its
issuer, the role's trust policy judged by the IAM judge, before moto issues credentials.

  * The issuer: the token's `iss` must name an IAM OIDC provider of the role's account
    (else InvalidIdentityToken "No OpenIDConnect provider found in your account for ...").
  * The token: signed by a key of the issuer's JWKS (from its discovery document; RS256
    or ES256, as IAM accepts), `aud` one of the provider's client ids (else
    InvalidIdentityToken "Incorrect token audience"), not expired (else
    ExpiredTokenException "Token expired: current date/time ... must be before the
    expiration date/time ...").
  * Trust: sts:AssumeRoleWithWebIdentity on the role by the provider (Federated), with
    `<issuer>:sub`, `<issuer>:aud`, `<issuer>:oaud` and `aws:FederatedProvider`, judged by
    the IAM judge against the role's trust policy (else AccessDenied "Not authorized to
    perform sts:AssumeRoleWithWebIdentity").

The issuer is reached where the rig registered it (POST /_rig/issuers with its URL and CA):
for the rig's node, its kube-apiserver, which serves the service-account issuer's discovery
document and keys as a cluster set up for IRSA does.
"""

import base64
import json
import time

from joserfc import jwt
from joserfc.errors import JoseError
from moto.iam.models import iam_backends
from moto.sts.exceptions import STSClientError
from moto.sts.responses import TokenResponse
from moto.utilities.utils import get_partition

import rig_identity
import rig_judge


class StsError(STSClientError):
    """An STS error as AWS answers it (moto serializes it in the query protocol)."""


def _claims_unverified(token: str) -> dict:
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        raise StsError("InvalidIdentityToken", "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")


def _provider_for(account: str, partition: str, issuer: str):
    for provider in iam_backends[account][partition].open_id_providers.values():
        if rig_identity.issuer_name(provider.url) == issuer:
            return provider
    return None


def verify(token: str, account: str, partition: str) -> tuple[object, dict]:
    """(the IAM OIDC provider, the verified claims) of a web identity token for `account`."""
    issuer = rig_identity.issuer_name(str(_claims_unverified(token).get("iss", "")))
    provider = _provider_for(account, partition, issuer)
    if provider is None:
        raise StsError("InvalidIdentityToken", f"No OpenIDConnect provider found in your account for https://{issuer}")
    try:
        keys = rig_identity.keys_of(issuer)
    except OSError as exc:
        raise StsError("IDPCommunicationError", f"Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements: {exc}")
    if keys is None:
        raise StsError("IDPCommunicationError", "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements")
    try:
        claims = jwt.decode(token, keys, algorithms=["RS256", "ES256"]).claims
    except (JoseError, ValueError):
        raise StsError("InvalidIdentityToken", "The web identity token provided could not be verified: its signature does not match a key of the issuer")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if not any(a in provider.client_id_list for a in audiences):
        raise StsError("InvalidIdentityToken", "Incorrect token audience")
    exp, now = claims.get("exp"), int(time.time())
    if not isinstance(exp, (int, float)) or exp <= now:
        raise StsError("ExpiredTokenException", f"Token expired: current date/time {now} must be before the expiration date/time {int(exp or 0)}")
    return provider, claims


def assume_role_with_web_identity(self: TokenResponse):
    role_arn = self._get_param("RoleArn") or ""
    token = self._get_param("WebIdentityToken") or ""
    parts = role_arn.split(":")
    if len(parts) < 6 or not parts[4].isdigit():
        raise StsError("ValidationError", f"{role_arn} is invalid")
    account, partition = parts[4], get_partition(self.region)
    provider, claims = verify(token, account, partition)
    issuer = rig_identity.issuer_name(provider.url)
    try:
        role = iam_backends[account][partition].get_role_by_arn(role_arn)
    except Exception:  # noqa: BLE001 - AWS says the same for a role that is not there
        raise StsError("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    aud = claims.get("aud")
    context = {
        f"{issuer}:sub": claims.get("sub"),
        f"{issuer}:aud": aud if isinstance(aud, str) else [a for a in aud if a in provider.client_id_list][0],
        f"{issuer}:oaud": aud,
        "aws:FederatedProvider": provider.arn,
    }
    if not rig_judge.trusts(provider.arn, account, role, context):
        raise StsError("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    return _moto_assume_role_with_web_identity(self)


_moto_assume_role_with_web_identity = TokenResponse.assume_role_with_web_identity


def install() -> None:
    TokenResponse.assume_role_with_web_identity = assume_role_with_web_identity
