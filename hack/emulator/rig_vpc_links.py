"""HTTP API VPC links and private integrations, as API Gateway documents them ("Private
integrations for HTTP APIs"), on moto's own VPC link state (moto keeps the links; this
module corrects where it does not answer as AWS does):

  * CreateVpcLink wants a name and at least one subnet; the link is AVAILABLE at once (the
    rig has no ENIs to wait for) and carries its tags.
  * The account's first link creates API Gateway's service-linked role
    (AWSServiceRoleForAPIGateway, trusted by ops.apigateway.amazonaws.com), as AWS does
    with the caller's iam:CreateServiceLinkedRole (which rig_authorization judges while the
    role does not exist).
  * Get/Update/DeleteVpcLink of a link the account does not have: NotFoundException (moto
    deleted nothing silently). DeleteVpcLink answers 202 and drops the link's tags.
  * An integration with ConnectionType VPC_LINK is an HTTP_PROXY to an ALB/NLB listener
    ARN or a Cloud Map service ARN, through a VPC link of the same account and region;
    INTERNET integrations take no ConnectionId. INTERNET is the default connection type.
  * The data plane has no VPC: a test says which URL stands in for a private target
    (/_rig/private-targets); a private integration without one answers 503, as API Gateway
    does when the target cannot be reached.
"""

import json
import re
import threading

from moto.apigatewayv2.exceptions import BadRequestException
from moto.apigatewayv2.models import ApiGatewayV2Backend
from moto.apigatewayv2.responses import ApiGatewayV2Response
from moto.iam.models import iam_backends
from moto.utilities.utils import get_partition

LISTENER_ARN = re.compile(
    r"^arn:aws[a-z-]*:elasticloadbalancing:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"listener/(app|net)/[\w-]+/[0-9a-f]+/[0-9a-f]+$"
)
CLOUD_MAP_SERVICE_ARN = re.compile(
    r"^arn:aws[a-z-]*:servicediscovery:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):service/srv-[\w]+$"
)

_stand_ins_lock = threading.Lock()
_stand_ins: dict[tuple[str, str, str], str] = {}


def is_private_target(uri: str | None) -> bool:
    return bool(LISTENER_ARN.match(uri or "") or CLOUD_MAP_SERVICE_ARN.match(uri or ""))


def stand_in(account: str, region: str, target: str, url: str) -> None:
    """Let `url` answer for the private target `target` (a listener or service ARN)."""
    if not is_private_target(target):
        raise ValueError(f"not an ALB/NLB listener or Cloud Map service ARN: {target}")
    with _stand_ins_lock:
        _stand_ins[(account, region, target)] = url


def stand_in_url(account: str, region: str, target: str) -> str | None:
    with _stand_ins_lock:
        return _stand_ins.get((account, region, target))


# --- VPC links ------------------------------------------------------------------------------

SERVICE_LINKED_ROLE = "AWSServiceRoleForAPIGateway"
SERVICE_LINKED_ROLE_SERVICE = "ops.apigateway.amazonaws.com"
SERVICE_LINKED_ROLE_PATH = f"/aws-service-role/{SERVICE_LINKED_ROLE_SERVICE}/"


def service_linked_role_arn(account: str, region: str) -> str:
    return f"arn:{get_partition(region)}:iam::{account}:role{SERVICE_LINKED_ROLE_PATH}{SERVICE_LINKED_ROLE}"


def has_service_linked_role(account: str, region: str) -> bool:
    backend = iam_backends[account][get_partition(region)]
    return any(role.name == SERVICE_LINKED_ROLE for role in backend.roles.values())


def _ensure_service_linked_role(account: str, region: str) -> None:
    if has_service_linked_role(account, region):
        return
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"Service": SERVICE_LINKED_ROLE_SERVICE}}]}
    iam_backends[account][get_partition(region)].create_role(
        SERVICE_LINKED_ROLE, json.dumps(trust), SERVICE_LINKED_ROLE_PATH, None,
        "Lets API Gateway manage VPC link network interfaces", [], None,
        linked_service=SERVICE_LINKED_ROLE_SERVICE,
    )


_moto_create_vpc_link = ApiGatewayV2Backend.create_vpc_link


def create_vpc_link(self, name, sg_ids, subnet_ids, tags):
    if not name:
        raise BadRequestException("Name is required")
    if not subnet_ids:
        raise BadRequestException("SubnetIds must contain at least one subnet")
    link = _moto_create_vpc_link(self, name, sg_ids or [], subnet_ids, tags or {})
    _ensure_service_linked_role(self.account_id, self.region_name)
    return link


def delete_vpc_link(self, vpc_link_id: str) -> None:
    link = self.get_vpc_link(vpc_link_id)  # NotFoundException when it is not there
    self.tagger.delete_all_tags_for_resource(link.arn)
    del self.vpc_links[vpc_link_id]


def delete_vpc_link_response(self: ApiGatewayV2Response):
    self.apigatewayv2_backend.delete_vpc_link(self.path.split("/")[-1])
    return 202, {}, "{}"


# --- private integrations -------------------------------------------------------------------


def _check_connection(backend: ApiGatewayV2Backend, integration_type, connection_type, connection_id, uri) -> None:
    if connection_type not in ("INTERNET", "VPC_LINK"):
        raise BadRequestException(f"Invalid connection type: {connection_type}")
    if connection_type == "INTERNET":
        if connection_id:
            raise BadRequestException("ConnectionId is only supported for the VPC_LINK connection type")
        return
    if integration_type != "HTTP_PROXY":
        raise BadRequestException("A VPC_LINK connection is only supported for HTTP_PROXY integrations")
    if not connection_id or connection_id not in backend.vpc_links:
        raise BadRequestException(f"Invalid VPC link identifier specified: {connection_id}")
    if not is_private_target(uri):
        raise BadRequestException(
            f"Invalid integration URI for a private integration: {uri}. It must be an ALB or NLB "
            "listener ARN or a Cloud Map service ARN."
        )


_moto_create_integration = ApiGatewayV2Backend.create_integration
_moto_update_integration = ApiGatewayV2Backend.update_integration


def create_integration(self, **kwargs):
    kwargs["connection_type"] = kwargs.get("connection_type") or "INTERNET"
    _check_connection(self, kwargs.get("integration_type"), kwargs["connection_type"],
                      kwargs.get("connection_id"), kwargs.get("integration_uri"))
    return _moto_create_integration(self, **kwargs)


def update_integration(self, **kwargs):
    current = self.get_integration(kwargs["api_id"], kwargs["integration_id"])

    def effective(name: str):
        value = kwargs.get(name)
        return value if value is not None else getattr(current, name)

    _check_connection(self, effective("integration_type"), effective("connection_type") or "INTERNET",
                      effective("connection_id"), effective("integration_uri"))
    return _moto_update_integration(self, **kwargs)


def install() -> None:
    ApiGatewayV2Backend.create_vpc_link = create_vpc_link
    ApiGatewayV2Backend.delete_vpc_link = delete_vpc_link
    ApiGatewayV2Response.delete_vpc_link = delete_vpc_link_response
    ApiGatewayV2Backend.create_integration = create_integration
    ApiGatewayV2Backend.update_integration = update_integration

