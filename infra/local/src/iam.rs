//! The functions' IAM policies, enforced on their DynamoDB calls and S3 object requests as AWS would: a call its role does not allow is
//! refused with `AccessDeniedException`. An emulator allows everything, so a permission missing from template.yaml
//! passed every local test and failed on the first call on AWS; now it fails here first.
//!
//! Each function runs with its own access key id (see `runtime.rs` and `keys.rs`); the emulator proxy reads it
//! from the request's SigV4 `Credential` (the `Authorization` header, or `X-Amz-Credential` of a presigned URL:
//! a presigned request acts with the rights of the function that signed it) and checks the call against that function's inline policy statements
//! (`Policies` with `Statement`, resolved against the stack: table ARNs, `${Table.Arn}/index/Name`). Managed
//! policies (the KMS one) are not modelled; callers with another key (tests, natter-local itself) are not checked.
//! DynamoDB calls and S3 object requests (`s3:GetObject`, `s3:PutObject`, `s3:DeleteObject` on
//! `arn:aws:s3:::{bucket}/{key}`) are checked; SQS, SNS and Secrets Manager are not.

use serde_json::Value;
use std::collections::HashMap;

/// One `Allow` statement: actions and resources, each possibly with `*` wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

/// Every function's statements, by the access key id it signs with.
#[derive(Debug, Default)]
pub struct Policies {
    by_key: HashMap<String, Vec<Statement>>,
    /// `arn:aws:dynamodb:{region}:{account}:table/`: how a table name becomes the ARN policies name.
    table_arn_prefix: String,
}

impl Policies {
    pub fn new(region: &str, account: &str) -> Self {
        Self {
            by_key: HashMap::new(),
            table_arn_prefix: format!("arn:aws:dynamodb:{region}:{account}:table/"),
        }
    }

    /// Adds a function's resolved `Policies` property (a list of inline statements and managed policy names).
    pub fn add(&mut self, key: &str, policies: &Value) {
        let statements = self.by_key.entry(key.to_owned()).or_default();
        for policy in policies.as_array().into_iter().flatten() {
            for s in policy["Statement"].as_array().into_iter().flatten() {
                if s["Effect"] != "Allow" {
                    continue;
                }
                statements.push(Statement {
                    actions: strings(&s["Action"]),
                    resources: strings(&s["Resource"]),
                });
            }
        }
    }

    /// Whether the caller signing with `key` may make this DynamoDB call (`operation`, as in `X-Amz-Target`, and
    /// its JSON body); `Err` names the first action and resource it may not. A caller without a policy here
    /// (not a function of the stack) may do anything.
    pub fn check_dynamodb(&self, key: &str, operation: &str, body: &Value) -> Result<(), String> {
        let Some(statements) = self.by_key.get(key) else {
            return Ok(());
        };
        for (action, resource) in self.dynamodb_needs(operation, body) {
            let allowed = statements.iter().any(|s| {
                s.actions.iter().any(|a| matches(a, &action)) && s.resources.iter().any(|r| matches(r, &resource))
            });
            if !allowed {
                return Err(format!(
                    "{key} is not authorized to perform: {action} on resource: {resource} because no \
                     identity-based policy allows the {action} action"
                ));
            }
        }
        Ok(())
    }

    /// Whether the caller signing with `key` may make this S3 request (`method` on the path-style `path`,
    /// `/{bucket}/{key}`). Requests on a bucket itself are not checked.
    pub fn check_s3(&self, key: &str, method: &str, path: &str) -> Result<(), String> {
        let Some(statements) = self.by_key.get(key) else {
            return Ok(());
        };
        let path = path.split('?').next().unwrap_or_default().trim_start_matches('/');
        let Some((bucket, object)) = path.split_once('/').filter(|(_, o)| !o.is_empty()) else {
            return Ok(());
        };
        let action = match method {
            "PUT" | "POST" => "s3:PutObject",
            "DELETE" => "s3:DeleteObject",
            _ => "s3:GetObject",
        };
        let resource = format!("arn:aws:s3:::{bucket}/{object}");
        let allowed = statements
            .iter()
            .any(|s| s.actions.iter().any(|a| matches(a, action)) && s.resources.iter().any(|r| matches(r, &resource)));
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "{key} is not authorized to perform: {action} on resource: {resource} because no identity-based \
                 policy allows the {action} action"
            ))
        }
    }

    /// The (action, resource) pairs a DynamoDB call needs.
    fn dynamodb_needs(&self, operation: &str, body: &Value) -> Vec<(String, String)> {
        let table = |name: &str| {
            if name.starts_with("arn:") {
                name.to_owned()
            } else {
                format!("{}{name}", self.table_arn_prefix)
            }
        };
        let action = |op: &str| format!("dynamodb:{op}");
        match operation {
            "BatchGetItem" | "BatchWriteItem" => body["RequestItems"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(t, _)| (action(operation), table(t)))
                .collect(),
            "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| {
                    let (kind, inner) = item.as_object()?.iter().next()?;
                    let op = match kind.as_str() {
                        "Put" => "PutItem",
                        "Update" => "UpdateItem",
                        "Delete" => "DeleteItem",
                        "ConditionCheck" => "ConditionCheckItem",
                        _ => "GetItem",
                    };
                    Some((action(op), table(inner["TableName"].as_str()?)))
                })
                .collect(),
            _ => {
                let Some(name) = body["TableName"].as_str() else {
                    return vec![(action(operation), "*".to_owned())];
                };
                let resource = match body["IndexName"].as_str() {
                    Some(index) => format!("{}/index/{index}", table(name)),
                    None => table(name),
                };
                vec![(action(operation), resource)]
            }
        }
    }
}

/// A string or a list of strings (as `Action` and `Resource` may be).
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// IAM's matching: `*` matches any run of characters, `?` any one; actions compare without case.
fn matches(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

/// Every function's inline IAM statements in `stack`, by the access key it runs with (`keys`: function name ->
/// access key id; a function without one signs with its name).
pub fn policies(
    stack: &crate::stack::Stack,
    keys: &HashMap<String, String>,
) -> Result<Policies, crate::template::TemplateError> {
    let mut out = Policies::new(&stack.naming.region, &stack.naming.account);
    for (id, _, _) in stack
        .template
        .resources()
        .filter(|(_, t, _)| *t == "AWS::Serverless::Function")
    {
        let name = crate::template::plain(&stack.names.refs[id]);
        if let Some(p) = stack.template.function_property(id, "Policies") {
            out.add(keys.get(&name).unwrap_or(&name), &stack.resolver().resolve(&p)?);
        }
    }
    Ok(out)
}

/// The access key id of a SigV4 `Authorization` header (`... Credential=KEY/date/region/service/aws4_request, ...`).
pub fn access_key(authorization: &str) -> Option<&str> {
    let rest = authorization.split("Credential=").nth(1)?;
    rest.split('/').next().filter(|k| !k.is_empty())
}

/// The access key id and service of an S3 request: from its `Authorization` header, or from the
/// `X-Amz-Credential` of a presigned URL's query (`KEY%2Fdate%2Fregion%2Fs3%2Faws4_request`). `None` for
/// anything that is not signed for S3.
pub fn s3_signer(authorization: Option<&str>, query: &str) -> Option<String> {
    let scope = match authorization {
        Some(a) => a.split("Credential=").nth(1)?.split([',', ' ']).next()?.to_owned(),
        None => {
            let raw = query.split('&').find_map(|p| p.strip_prefix("X-Amz-Credential="))?;
            raw.replace("%2F", "/").replace("%2f", "/")
        }
    };
    let parts: Vec<&str> = scope.split('/').collect();
    (parts.len() == 5 && parts[3] == "s3" && !parts[0].is_empty()).then(|| parts[0].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policies() -> Policies {
        let mut p = Policies::new("us-east-1", "1");
        p.add(
            "Directory",
            &json!([
                "arn:aws:iam::aws:policy/SomeManagedPolicy",
                {"Statement": [
                    {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": ["arn:aws:dynamodb:us-east-1:1:table/Invites"]},
                    {"Effect": "Allow", "Action": "dynamodb:Query", "Resource": "arn:aws:dynamodb:us-east-1:1:table/Invites/index/ByTime"},
                    {"Effect": "Allow", "Action": ["dynamodb:Batch*"], "Resource": ["arn:aws:dynamodb:us-east-1:1:table/Users"]}
                ]}
            ]),
        );
        p
    }

    #[test]
    fn a_call_is_allowed_only_by_a_statement_naming_its_action_and_resource() {
        let p = policies();
        assert!(
            p.check_dynamodb("Directory", "GetItem", &json!({"TableName": "Invites"}))
                .is_ok()
        );
        let e = p
            .check_dynamodb("Directory", "DeleteItem", &json!({"TableName": "Invites"}))
            .unwrap_err();
        assert!(
            e.contains("dynamodb:DeleteItem on resource: arn:aws:dynamodb:us-east-1:1:table/Invites"),
            "{e}"
        );
        assert!(
            p.check_dynamodb(
                "Directory",
                "Query",
                &json!({"TableName": "Invites", "IndexName": "ByTime"})
            )
            .is_ok()
        );
        assert!(
            p.check_dynamodb("Directory", "Query", &json!({"TableName": "Invites"}))
                .is_err(),
            "the index, not the table"
        );
        assert!(
            p.check_dynamodb("Directory", "BatchGetItem", &json!({"RequestItems": {"Users": {}}}))
                .is_ok()
        );
        assert!(
            p.check_dynamodb(
                "Directory",
                "BatchGetItem",
                &json!({"RequestItems": {"Users": {}, "Presence": {}}})
            )
            .is_err()
        );
        let tx = json!({"TransactItems": [{"Put": {"TableName": "Invites"}}, {"Update": {"TableName": "Invites"}}]});
        assert!(
            p.check_dynamodb("Directory", "TransactWriteItems", &tx)
                .unwrap_err()
                .contains("dynamodb:UpdateItem")
        );
        assert!(
            p.check_dynamodb("SomeoneElse", "DeleteTable", &json!({})).is_ok(),
            "not a function of the stack"
        );
    }

    #[test]
    fn s3_requests_are_checked_by_object_and_method() {
        let mut p = Policies::new("us-east-1", "1");
        p.add(
            "Sender",
            &json!([{"Statement": [{"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": ["arn:aws:s3:::bkt/a/*"]}]}]),
        );
        assert!(p.check_s3("Sender", "PUT", "/bkt/a/alice/1?X-Amz-Signature=x").is_ok());
        assert!(p.check_s3("Sender", "HEAD", "/bkt/a/alice/1").is_ok());
        assert!(
            p.check_s3("Sender", "DELETE", "/bkt/a/alice/1").is_err(),
            "no DeleteObject"
        );
        assert!(
            p.check_s3("Sender", "GET", "/bkt/b/other").is_err(),
            "outside the prefix"
        );
        assert!(
            p.check_s3("Sender", "PUT", "/bkt").is_ok(),
            "bucket requests are not checked"
        );
        assert!(
            p.check_s3("someone", "DELETE", "/bkt/a/x").is_ok(),
            "unknown keys are not checked"
        );
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA9%2F20261203%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=1";
        assert_eq!(s3_signer(None, q).as_deref(), Some("AKIA9"));
        let h = "AWS4-HMAC-SHA256 Credential=AKIA8/20261203/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";
        assert_eq!(s3_signer(Some(h), "").as_deref(), Some("AKIA8"));
        assert_eq!(s3_signer(Some(&h.replace("/s3/", "/sqs/")), ""), None);
    }

    #[test]
    fn the_access_key_is_read_from_sigv4() {
        let h = "AWS4-HMAC-SHA256 Credential=natter-DirectoryFunction/20261203/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=abc";
        assert_eq!(access_key(h), Some("natter-DirectoryFunction"));
        assert_eq!(access_key("Bearer x"), None);
    }
}
