"""Do the rendered roles allow a run's calls, and only with ARNs where ARNs are known?

:func:`denied` evaluates every call with moto's IAM policy evaluator
(``moto.iam.access_control.IAMPolicy``, the one moto's server enforces with), against the
policy of the role that makes it. Known limits of that evaluator (moto 5.2.5): it evaluates
``StringEquals`` conditions only (``StringLike`` is treated as met) and matches ``*`` but not
``?``; the templates use no ``?``. It also answers DENIED for an Allow statement whose
condition is unmet; :func:`allows` combines its per-statement answers by IAM's rule instead.

:func:`wildcard_findings` is the least-privilege audit: no action wildcards, no ``*`` in the
service, region or account of an ARN, and ``"Resource": "*"`` only for actions that AWS
authorizes on no resource (the Service Authorization Reference lists no resource type for them).
"""

from __future__ import annotations

from gated_ml.iam.calls import Call
from gated_ml.iam.render import Role

# actions whose Service Authorization Reference entry has no resource type: "*" is the only resource
RESOURCELESS_ACTIONS = frozenset(
    {
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeVpcs",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "sagemaker:ListModelPackages",
    }
)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def allows(role: Role, call: Call) -> bool:
    """IAM's rule over moto's per-statement answers: allowed when a statement allows and none denies.

    moto's ``IAMPolicy`` answers DENIED when an *Allow* statement's condition is unmet (so one
    ``iam:PassRole`` statement per service would deny the other); in IAM that statement just
    does not apply, so here DENIED counts only from a ``Deny`` statement.
    """
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    answers = [
        (st["Effect"], IAMPolicyStatement(st).is_action_permitted(call.action, call.resource, incoming_condition_values=dict(call.context)))
        for st in _as_list(role.policy["Statement"])
    ]
    if any(effect == "Deny" and answer == PermissionResult.DENIED for effect, answer in answers):
        return False
    return any(effect == "Allow" and answer == PermissionResult.PERMITTED for effect, answer in answers)


def trusts(role: Role, service: str) -> bool:
    """The role's trust policy lets ``service`` assume it (moto's evaluator does not read service principals)."""
    return any(
        st["Effect"] == "Allow" and "sts:AssumeRole" in _as_list(st["Action"]) and service in _as_list(st.get("Principal", {}).get("Service", []))
        for st in role.trust["Statement"]
    )


def denied(calls: list[Call], roles: dict[str, Role]) -> list[str]:
    """Every call its role does not allow (or made by a role that is not rendered), as readable lines."""
    by_arn = {r.arn: r for r in roles.values()}
    out = []
    for call in dict.fromkeys(calls):
        role = by_arn.get(call.role_arn)
        if role is None:
            out.append(f"{call}: no rendered role has the ARN {call.role_arn!r}")
        elif not allows(role, call):
            out.append(f"{call}: not allowed by the {role.key} role's policy")
        elif call.action == "iam:PassRole":
            service = dict(call.context)["iam:PassedToService"]
            passed = by_arn.get(call.resource)
            if passed is None or not trusts(passed, service):
                out.append(f"{call}: the passed role does not trust {service}")
    return out


def wildcard_findings(policy: dict) -> list[str]:
    """Statements that grant more than an ARN would: see the module docstring."""
    out = []
    for st in policy["Statement"]:
        sid, actions, resources = st.get("Sid", "?"), _as_list(st["Action"]), _as_list(st["Resource"])
        out += [f"{sid}: action wildcard {a!r}" for a in actions if "*" in a]
        for res in resources:
            if res == "*":
                out += [f"{sid}: {a} on '*' though it takes a resource ARN" for a in actions if a not in RESOURCELESS_ACTIONS]
            elif any("*" in part for part in res.split(":")[:5]):
                out.append(f"{sid}: {res!r} has a wildcard in its partition, service, region or account")
    return out
