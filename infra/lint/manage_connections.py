"""natter's cfn-lint rules (run with `cfn-lint --append-rules infra/lint`).

cfn-lint lints the template after the SAM transform, so a function appears as AWS::Lambda::Function with its
environment, and its `Policies` as the inline policies of the generated AWS::IAM::Role.
"""

from cfnlint.rules import CloudFormationLintRule, RuleMatch


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _role_statements(cfn, function):
    """Statements of the inline policies of the role a function runs with."""
    role = function.get("Properties", {}).get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        target = role["Fn::GetAtt"]
        role_id = target[0] if isinstance(target, list) else str(target).split(".")[0]
    else:
        return []
    resource = cfn.template.get("Resources", {}).get(role_id, {})
    statements = []
    for policy in resource.get("Properties", {}).get("Policies", []) or []:
        document = policy.get("PolicyDocument", {}) if isinstance(policy, dict) else {}
        statements.extend(_as_list(document.get("Statement", [])))
    return statements


class ManageConnectionsWhereNeeded(CloudFormationLintRule):
    """A function given the @connections endpoint posts to connections: it must hold
    execute-api:ManageConnections, or every push fails with 403 at run time (nothing in CloudFormation notices)."""

    id = "E9001"
    shortdesc = "Functions with MANAGEMENT_ENDPOINT hold execute-api:ManageConnections"
    description = (
        "A Lambda function whose environment has MANAGEMENT_ENDPOINT posts to WebSocket connections and must be "
        "allowed execute-api:ManageConnections."
    )
    source_url = "https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-control-access-iam.html"
    tags = ["natter", "iam", "websocket"]

    def match(self, cfn):
        matches = []
        for name, function in cfn.get_resources(["AWS::Lambda::Function"]).items():
            variables = function.get("Properties", {}).get("Environment", {}).get("Variables", {}) or {}
            if "MANAGEMENT_ENDPOINT" not in variables:
                continue
            allowed = any(
                isinstance(s, dict)
                and s.get("Effect") == "Allow"
                and "execute-api:ManageConnections" in _as_list(s.get("Action", []))
                for s in _role_statements(cfn, function)
            )
            if not allowed:
                matches.append(
                    RuleMatch(
                        ["Resources", name, "Properties", "Environment", "Variables", "MANAGEMENT_ENDPOINT"],
                        f"{name} has MANAGEMENT_ENDPOINT but its role lacks execute-api:ManageConnections",
                    )
                )
        return matches
