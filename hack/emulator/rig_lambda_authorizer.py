"""Lambda REQUEST authorizers of HTTP APIs, as API Gateway documents them ("Control access
to HTTP APIs with AWS Lambda authorizers"): the rig's own reading, sharing nothing with the
operator. rig_execute_api runs the function; this module holds what API Gateway decides
around it:

  * Identity sources ($request.header.X, $request.querystring.x, $context.x,
    $stageVariables.x): every one must be present and non-empty, else 401 without calling
    the function. Their values (in order) are the cache key.
  * The event: the route's request as payload 1.0 or 2.0 (no body), with `type`,
    `routeArn` (2.0) or `methodArn` (1.0), and `identitySource` (a list in 2.0, the values
    joined by "," in 1.0).
  * The answer: with simple responses (2.0 only) {isAuthorized, context}; else an IAM
    policy {principalId, policyDocument, context}, which must allow execute-api:Invoke on
    the route's ARN (judged by the IAM judge, as any policy). A malformed answer is 500.
  * The cache: the function's answer per authorizer and identity-source values, for
    authorizerResultTtlInSeconds (0: none); a cached policy is judged again for each route.
"""

import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import rig_judge

AUTHORIZER_POLICY = "lambda-authorizer/policyDocument"


class Malformed(Exception):
    """The function's answer is not one API Gateway accepts (API Gateway answers 500)."""


# --- identity sources ---------------------------------------------------------------------


def identity_values(sources: list[str], request: dict, context: dict) -> list[str] | None:
    """The value of each identity source, in order; None when one is missing or empty."""
    values = []
    for source in sources:
        value = _identity_value(source.strip(), request, context)
        if not value:
            return None
        values.append(value)
    return values


def _identity_value(source: str, request: dict, context: dict) -> str | None:
    if source.startswith("$request.header."):
        return request["headers"].get(source[len("$request.header."):].lower())
    if source.startswith("$request.querystring."):
        name = source[len("$request.querystring."):]
        found = [v for k, v in parse_qsl(request["query"], keep_blank_values=True) if k == name]
        return ",".join(found) if found else None
    if source.startswith("$context."):
        return context.get(source[len("$context."):])
    # $stageVariables.x: the rig's $default stages have none.
    return None


# --- the event ----------------------------------------------------------------------------


def event(version: str, request_event: dict, route_arn: str, values: list[str]) -> dict:
    """The authorizer's event: the request as the integration would see it, without the
    body, plus what tells the authorizer what is asked."""
    authorizer_event = {k: v for k, v in request_event.items() if k not in ("body", "isBase64Encoded")}
    authorizer_event["type"] = "REQUEST"
    if version == "2.0":
        authorizer_event["routeArn"] = route_arn
        authorizer_event["identitySource"] = values
    else:
        authorizer_event["methodArn"] = route_arn
        authorizer_event["identitySource"] = ",".join(values)
        authorizer_event["authorizationToken"] = ",".join(values)
    return authorizer_event


# --- the answer ---------------------------------------------------------------------------


@dataclass
class Verdict:
    """What the function answered, checked: a simple yes/no, or an IAM policy."""

    simple: bool | None
    policy: dict | None
    principal_id: str | None
    context: dict = field(default_factory=dict)

    def allows(self, route_arn: str, account: str, partition: str) -> bool:
        if self.simple is not None:
            return self.simple
        verdict = rig_judge.authorize(
            principal=f"arn:{partition}:iam::{account}:root",
            account=account,
            operation="execute-api:Invoke",
            identity_policies=[{"name": AUTHORIZER_POLICY, "policy": self.policy}],
            checks=[{"action": "execute-api:Invoke", "resource": route_arn, "context": {}}],
        )
        return verdict["decision"] == "Allowed"

    def for_integration(self) -> dict:
        """requestContext.authorizer of the integration's event (rig_execute_api flattens
        it for payload 1.0)."""
        authorizer = {"lambda": dict(self.context)}
        if self.principal_id is not None:
            authorizer["principalId"] = self.principal_id
        return authorizer


def verdict(answer, simple_responses: bool) -> Verdict:
    """The function's answer read as API Gateway reads it; Malformed when it is not one."""
    if not isinstance(answer, dict):
        raise Malformed(f"the authorizer answered {type(answer).__name__}, not an object")
    context = answer.get("context") or {}
    if not isinstance(context, dict):
        raise Malformed("the authorizer's context is not an object")
    if simple_responses:
        if not isinstance(answer.get("isAuthorized"), bool):
            raise Malformed("a simple response needs a boolean isAuthorized")
        return Verdict(simple=answer["isAuthorized"], policy=None, principal_id=None, context=context)
    policy = answer.get("policyDocument")
    if not isinstance(policy, dict) or not isinstance(policy.get("Statement"), (list, dict)):
        raise Malformed("an IAM policy response needs a policyDocument with statements")
    principal_id = answer.get("principalId")
    if not isinstance(principal_id, str) or not principal_id:
        raise Malformed("an IAM policy response needs a principalId")
    return Verdict(simple=None, policy=policy, principal_id=principal_id, context=context)


# --- the cache ----------------------------------------------------------------------------


class Cache:
    """Verdicts by (account, API, authorizer, identity-source values), each until its TTL."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple, tuple[float, Verdict]] = {}

    def get(self, key: tuple) -> Verdict | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: tuple, cached: Verdict, ttl_seconds: int) -> None:
        if ttl_seconds <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + ttl_seconds, cached)


cache = Cache()
