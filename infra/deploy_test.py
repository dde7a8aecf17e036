"""The deploy test, without AWS: render template.yaml the way CloudFormation gets it (SAM's own translator,
offline) and check what a real account needs for a deploy and a redeploy to work. Then break each invariant on
purpose and check that the test notices, so a regression fails CI rather than a production deploy.

Run by `make lint` (with .venv's Python, where aws-sam-cli brings aws-sam-translator).
"""

import copy
import logging
import os
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

# The translator fills in pseudo parameters from the session; offline, the region is all it needs.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

# The translator logs its own usage metrics, which nobody publishes here.
logging.getLogger("samtranslator").setLevel(logging.ERROR)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class NoManagedPolicies:
    """natter's functions name no AWS managed policy; the translator must not look any up."""

    def load(self):
        return {}


def packaged(template):
    """What `sam package` hands CloudFormation: local code and nested templates replaced by S3 locations."""
    t = copy.deepcopy(template)
    for name, r in t["Resources"].items():
        props = r.get("Properties", {})
        if r["Type"] == "AWS::Serverless::Function" and not str(props.get("CodeUri", "")).startswith("s3://"):
            props["CodeUri"] = f"s3://natter-artifacts/{name}.zip"
        if r["Type"] == "AWS::Serverless::Application" and isinstance(props.get("Location"), str):
            props["Location"] = f"https://natter-artifacts.s3.amazonaws.com/{name}.yaml"
    return t


def render(template):
    return transform(packaged(template), {}, NoManagedPolicies())


def resources(cfn, kind):
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == kind}


def refs(value):
    """Every logical id or parameter a value references (Ref, GetAtt, Sub), recursively."""
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                text = v[0] if isinstance(v, list) else v
                out.update(p.split(".")[0] for p in _sub_names(text))
            out |= refs(v)
    elif isinstance(value, list):
        for v in value:
            out |= refs(v)
    return out


def _sub_names(text):
    names, i = [], 0
    while (i := text.find("${", i)) >= 0:
        j = text.find("}", i)
        names.append(text[i + 2 : j])
        i = j
    return names


def problems(source):
    """What is wrong with the rendered template, as sentences (empty: deployable as the docs say)."""
    cfn = render(source)
    found = []
    params = source.get("Parameters", {})
    api_parts = {
        k
        for k, v in cfn["Resources"].items()
        if v["Type"] in ("AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::RouteResponse",
                         "AWS::ApiGatewayV2::Integration", "AWS::ApiGatewayV2::Authorizer")
    }

    # A route change goes live: the stage deploys automatically; a Deployment resource is made once, never again.
    if resources(cfn, "AWS::ApiGatewayV2::Deployment"):
        found.append("a Deployment resource: later route, integration or authorizer changes never go live")
    stages = resources(cfn, "AWS::ApiGatewayV2::Stage")
    for name, stage in stages.items():
        if stage["Properties"].get("AutoDeploy") is not True:
            found.append(f"stage {name} does not deploy automatically")
        depends = stage.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        missing = sorted(api_parts - set(depends))
        if missing:
            found.append(f"stage {name} does not wait for {', '.join(missing)}")
        # The account's logging role, when this stack sets it, must exist before a stage with access logs.
        ready = [d for d in depends if d in cfn["Resources"]]
        if not any("ApiGatewayAccount" in refs(cfn["Resources"][d]) or d == "ApiGatewayAccount" for d in ready):
            found.append(f"stage {name} does not wait for the account's API Gateway logging role")
    for name in resources(cfn, "AWS::ApiGateway::Account"):
        if cfn["Resources"][name].get("DeletionPolicy") != "Retain":
            found.append("the API Gateway account setting is deleted with the stack (the region's other stacks lose it)")

    # No secret in a plain environment variable.
    secret_params = {k for k, v in params.items() if v.get("NoEcho")}
    secrets = set(resources(cfn, "AWS::SecretsManager::Secret"))
    for name, fn in resources(cfn, "AWS::Lambda::Function").items():
        env = fn["Properties"].get("Environment", {}).get("Variables", {})
        for var, value in env.items():
            if refs(value) & secret_params:
                found.append(f"{name} gets the NoEcho parameter {sorted(refs(value) & secret_params)} in {var}")
            if "SECRET" in var and not var.endswith("_ARN"):
                found.append(f"{name} reads a secret from the plain environment variable {var}")
    authorizer = cfn["Resources"].get("AuthorizerFunction", {})
    env = authorizer.get("Properties", {}).get("Environment", {}).get("Variables", {})
    if not (refs(env.get("JWT_SECRET_ARN")) & (secrets | {"JwtSecretArn"})):
        found.append("the authorizer is not given the token secret's ARN")

    # Data survives: point-in-time recovery and deletion protection on every table that holds user data.
    for name, table in resources(cfn, "AWS::DynamoDB::Table").items():
        if table.get("DeletionPolicy") != "Retain":
            continue
        props = table["Properties"]
        if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is not True:
            found.append(f"{name} has no point-in-time recovery")
        if "DeletionProtectionEnabled" not in props:
            found.append(f"{name} has no deletion protection")
    if str(params.get("RetentionDays", {}).get("Default")) != "1827":
        found.append("messages are not kept five years by default")

    # Capacity: every function's reserved concurrency is a parameter away.
    for name, fn in resources(cfn, "AWS::Lambda::Function").items():
        if "ReservedConcurrentExecutions" not in fn["Properties"]:
            found.append(f"{name} cannot be given reserved concurrency")

    # Every route can invoke its function: a Lambda permission whose SourceArn covers the route key (a route whose
    # function does not allow it is answered "Internal server error" on AWS, and never locally).
    def text(v):
        if isinstance(v, dict) and "Fn::Sub" in v:
            v = v["Fn::Sub"]
            v = v[0] if isinstance(v, list) else v
        return v if isinstance(v, str) else ""
    integrations = resources(cfn, "AWS::ApiGatewayV2::Integration")
    permissions = resources(cfn, "AWS::Lambda::Permission")
    for name, route in resources(cfn, "AWS::ApiGatewayV2::Route").items():
        key = route["Properties"]["RouteKey"]
        target = text(route["Properties"].get("Target"))
        integration = integrations.get(target.removeprefix("integrations/${").rstrip("}"))
        if integration is None:
            continue
        function = next((r for r in refs(integration["Properties"].get("IntegrationUri")) if not r.startswith("AWS::")), "")
        allowed = any(
            refs(p["Properties"].get("FunctionName")) == {function}
            and (text(p["Properties"].get("SourceArn")).endswith(("/*/*", f"/*/{key}")))
            for p in permissions.values()
        )
        if not allowed:
            found.append(f"route {key} cannot invoke {function} (no permission covers it)")

    # Attachments: private, encrypted, over TLS only, and gone with the messages.
    for name, bucket in resources(cfn, "AWS::S3::Bucket").items():
        props = bucket["Properties"]
        block = props.get("PublicAccessBlockConfiguration", {})
        if not all(block.get(k) is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
                                                   "RestrictPublicBuckets")):
            found.append(f"{name} does not block public access")
        if "BucketEncryption" not in props:
            found.append(f"{name} is not encrypted")
        rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
        if not any("ExpirationInDays" in r for r in rules):
            found.append(f"{name} keeps objects forever (no expiration with the retention)")
        policies = [p for p in resources(cfn, "AWS::S3::BucketPolicy").values()
                    if refs(p["Properties"].get("Bucket")) == {name}]
        if not any("aws:SecureTransport" in str(p) for p in policies):
            found.append(f"{name} takes requests without TLS")

    # A stream event source never blocks its shard for a day: bounded retries, then a report somewhere paged
    # (a stream is retried in order; with the default of -1 one failing record holds up every one behind it).
    for name, mapping in resources(cfn, "AWS::Lambda::EventSourceMapping").items():
        props = mapping["Properties"]
        if "StreamArn" not in str(props.get("EventSourceArn")):
            continue
        if int(props.get("MaximumRetryAttempts", -1)) < 0:
            found.append(f"{name} retries a failing stream batch until its records expire")
        if not props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"):
            found.append(f"{name} drops a given-up stream batch without a report")
        if not props.get("FilterCriteria"):
            found.append(f"{name} invokes its function for every change of the table")
    # Someone is paged for what users see and for queues that back up.
    monitoring = resources(cfn, "AWS::CloudFormation::Stack")
    if not monitoring:
        found.append("no monitoring stack")
    return found


def monitoring_problems(text):
    found = []
    mon = yaml_parse(text)
    alarms = resources(mon, "AWS::CloudWatch::Alarm")
    names = " ".join(str(a["Properties"]) for a in alarms.values())
    for what, needle in [("error frames", "ErrorFrames.unavailable"), ("queue age", "ApproximateAgeOfOldestMessage"),
                         ("throttling", "Throttled"), ("API integration errors", "IntegrationError")]:
        if needle not in names:
            found.append(f"no alarm on {what}")
    if not resources(mon, "AWS::CloudWatch::Dashboard"):
        found.append("no dashboard")
    return found


def break_it(template):
    """Each a known regression the test must catch."""
    def deployment(t):
        t["Resources"]["Deployment"] = {"Type": "AWS::ApiGatewayV2::Deployment", "Properties": {"ApiId": {"Ref": "WebSocketApi"}}}
        t["Resources"]["Stage"]["Properties"].pop("AutoDeploy")
        t["Resources"]["Stage"]["Properties"]["DeploymentId"] = {"Ref": "Deployment"}

    def early_stage(t):
        t["Resources"]["Stage"]["DependsOn"] = [d for d in t["Resources"]["Stage"]["DependsOn"] if d != "SendRoute"]

    def plain_secret(t):
        t["Parameters"]["JwtSecret"] = {"Type": "String", "NoEcho": True}
        env = t["Resources"]["AuthorizerFunction"]["Properties"]["Environment"]["Variables"]
        env["JWT_SECRET"] = {"Ref": "JwtSecret"}

    def no_pitr(t):
        t["Resources"]["SessionsTable"]["Properties"].pop("PointInTimeRecoverySpecification")

    def no_logging_wait(t):
        t["Resources"]["Stage"]["DependsOn"] = [d for d in t["Resources"]["Stage"]["DependsOn"] if d != "LoggingReady"]

    def send_route_only(t):
        t["Resources"]["SendPermission"]["Properties"]["SourceArn"] = {
            "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/*/send"}

    def public_bucket(t):
        t["Resources"]["AttachmentsBucket"]["Properties"].pop("PublicAccessBlockConfiguration")

    def stream_retried_forever(t):
        t["Resources"]["IndexFunction"]["Properties"]["Events"]["StoredMessages"]["Properties"].pop("MaximumRetryAttempts")

    return [deployment, early_stage, plain_secret, no_pitr, no_logging_wait, send_route_only, public_bucket,
            stream_retried_forever]


def main():
    template = yaml_parse(open(os.path.join(ROOT, "template.yaml")).read())
    found = problems(template) + monitoring_problems(open(os.path.join(ROOT, "infra/monitoring.yaml")).read())
    for p in found:
        print(f"deploy test: {p}")
    missed = []
    for breaker in break_it(template):
        broken = copy.deepcopy(template)
        breaker(broken)
        if not problems(broken):
            missed.append(breaker.__name__)
    for m in missed:
        print(f"deploy test: the regression '{m}' was not caught")
    if found or missed:
        sys.exit(1)
    print(f"deploy test: ok ({len(break_it(template))} regressions caught)")


if __name__ == "__main__":
    main()
