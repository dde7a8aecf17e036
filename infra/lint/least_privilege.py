"""E9002: no wildcard in what a function may do or touch.

Every function's inline policies name their actions (`dynamodb:PutItem`, never `dynamodb:*`) and their resources
(a table, an index, a queue), never `*`. Two wildcards are allowed, for ids not known in advance: the connection
id of the @connections API (`.../POST/@connections/*`), the endpoint id within one SNS platform application
(`...:endpoint/${App}/*`, the application named by a parameter), and the attachment objects under the `a/` prefix
of one bucket of the stack (`${Bucket.Arn}/a/*`).
"""

from cfnlint.rules import CloudFormationLintRule, RuleMatch

CONNECTIONS_SUFFIX = "/@connections/*"
ENDPOINTS_SUFFIX = ":endpoint/${App}/*"
OBJECTS_SUFFIX = ".Arn}/a/*"


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _text(value):
    """The literal text of a resource (the template part of Fn::Sub, the joined literals of Fn::Join);
    None for references (Ref, Fn::GetAtt), which name one resource."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Fn::Sub":
            return arg if isinstance(arg, str) else (arg[0] if arg and isinstance(arg[0], str) else None)
        if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list):
            parts = [p if isinstance(p, str) else "${ref}" for p in arg[1]]
            return str(arg[0]).join(parts)
    return None


class NoWildcardInFunctionPolicies(CloudFormationLintRule):
    id = "E9002"
    shortdesc = "Function policies name their actions and resources"
    description = (
        "Inline policies of function roles must not use '*' in an action or a resource, except the connection id "
        "of the @connections API."
    )
    source_url = "https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html#grant-least-privilege"
    tags = ["natter", "iam", "least-privilege"]

    def match(self, cfn):
        matches = []
        for name, role in cfn.get_resources(["AWS::IAM::Role"]).items():
            policies = role.get("Properties", {}).get("Policies", []) or []
            for p_index, policy in enumerate(policies):
                if not isinstance(policy, dict):
                    continue
                statements = _as_list(policy.get("PolicyDocument", {}).get("Statement", []))
                for s_index, statement in enumerate(statements):
                    if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                        continue
                    path = ["Resources", name, "Properties", "Policies", p_index, "PolicyDocument", "Statement", s_index]
                    for action in _as_list(statement.get("Action", [])):
                        if isinstance(action, str) and "*" in action:
                            matches.append(RuleMatch(path + ["Action"], f"{name}: wildcard action {action!r}"))
                    for resource in _as_list(statement.get("Resource", [])):
                        text = _text(resource)
                        if text is None or "*" not in text:
                            continue
                        if text.endswith(CONNECTIONS_SUFFIX) and "*" not in text[: -len(CONNECTIONS_SUFFIX)]:
                            continue
                        if text.endswith(ENDPOINTS_SUFFIX) and "*" not in text[: -len(ENDPOINTS_SUFFIX)]:
                            continue
                        if text.startswith("${") and text.endswith(OBJECTS_SUFFIX) and "*" not in text[:-1]:
                            continue
                        matches.append(RuleMatch(path + ["Resource"], f"{name}: wildcard resource {text!r}"))
                    if "NotAction" in statement or "NotResource" in statement:
                        matches.append(RuleMatch(path, f"{name}: NotAction/NotResource allow everything else"))
        return matches
