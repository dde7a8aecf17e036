//! The local stack as template.yaml describes it: local names for every resource, each function's resolved
//! environment, the WebSocket API's routes and the SQS event sources.

pub use crate::naming::Naming;
use crate::{
    naming,
    template::{Names, Resolver, Template, TemplateError, plain},
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// A Lambda function as the local runtime runs it.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub name: String,
    /// The cargo binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    pub env: BTreeMap<String, String>,
    pub timeout_secs: u64,
    pub memory_mb: u64,
    pub sqs_sources: Vec<SqsSource>,
    pub stream_sources: Vec<crate::stream_source::StreamSource>,
}

/// An SQS event source mapping.
#[derive(Debug, Clone)]
pub struct SqsSource {
    pub queue: String,
    pub batch_size: usize,
    pub window_secs: u64,
    pub report_failures: bool,
}

#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub key: String,
    /// Logical id of the function behind the route.
    pub function: String,
    /// The route has a route response: the integration's body goes back to the caller.
    pub responds: bool,
    pub authorizer: Option<AuthorizerSpec>,
}

#[derive(Debug, Clone)]
pub struct AuthorizerSpec {
    pub function: String,
    /// Query-string parameters that must be present (from `route.request.querystring.X` identity sources).
    pub query_identity: Vec<String>,
    pub header_identity: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ApiSpec {
    pub route_selection: String,
    pub routes: Vec<RouteSpec>,
    pub stage: String,
    pub rate_limit: Option<f64>,
    pub burst_limit: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct TableSpec {
    pub logical_id: String,
    pub name: String,
    /// Resolved `Properties`.
    pub properties: Value,
}

#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub logical_id: String,
    pub name: String,
    pub properties: Value,
}

/// A secret the template creates (its value is natter-local's to give: the local signing key).
#[derive(Debug, Clone)]
pub struct SecretSpec {
    pub logical_id: String,
    pub name: String,
}

pub struct Stack {
    pub template: Template,
    pub naming: Naming,
    pub names: Names,
}

fn err(msg: impl Into<String>) -> TemplateError {
    TemplateError::Invalid(msg.into())
}

impl Stack {
    /// Names every resource; `parameters` override the template's defaults (and must give those without one).
    pub fn new(
        template: Template,
        naming: Naming,
        parameters: &HashMap<String, String>,
    ) -> Result<Self, TemplateError> {
        let mut names = Names::default();
        let n = &naming;
        for (k, v) in [
            ("AWS::Region", n.region.clone()),
            ("AWS::AccountId", n.account.clone()),
            ("AWS::StackName", n.stack_name.clone()),
            (
                "AWS::StackId",
                format!(
                    "arn:aws:cloudformation:{}:{}:stack/{}/local",
                    n.region, n.account, n.stack_name
                ),
            ),
            ("AWS::Partition", "aws".into()),
            ("AWS::URLSuffix", "amazonaws.com".into()),
        ] {
            names.pseudo.insert(k.into(), Value::String(v));
        }
        names.parameters = template.parameter_defaults();
        for (k, v) in parameters {
            names.parameters.insert(k.clone(), Value::String(v.clone()));
        }
        // As CloudFormation: `!Ref` of a CommaDelimitedList is a list.
        for (k, v) in names.parameters.iter_mut() {
            if let (Some("CommaDelimitedList"), Value::String(s)) = (template.parameter_type(k), &*v) {
                *v = Value::Array(s.split(',').map(|x| Value::String(x.trim().to_owned())).collect());
            }
        }
        let missing: Vec<String> = template
            .parameter_names()
            .into_iter()
            .filter(|p| !names.parameters.contains_key(p))
            .collect();
        if !missing.is_empty() {
            return Err(err(format!("parameters without a value: {}", missing.join(", "))));
        }
        let mut stack = Self {
            template,
            naming,
            names,
        };
        naming::name_resources(&stack.template, &stack.naming, &mut stack.names)?;
        Ok(stack)
    }

    pub fn resolver(&self) -> Resolver<'_> {
        Resolver {
            template: &self.template,
            names: &self.names,
        }
    }

    /// Records the URL the emulator gave a queue.
    /// Records what the emulator reported for a queue: its URL and its ARN (whose account is the emulator's, not
    /// whatever natter-local assumed).
    pub fn set_queue(&mut self, logical_id: &str, url: &str, arn: Option<&str>) {
        self.names.refs.insert(logical_id.to_owned(), url.into());
        self.names
            .attrs
            .insert((logical_id.to_owned(), "QueueUrl".into()), url.into());
        if let Some(arn) = arn {
            self.names
                .attrs
                .insert((logical_id.to_owned(), "Arn".into()), arn.into());
        }
    }

    pub fn queue_url(&self, logical_id: &str) -> Option<String> {
        self.names.refs.get(logical_id).map(plain)
    }

    pub fn tables(&self) -> Result<Vec<TableSpec>, TemplateError> {
        self.template
            .resources_of_type("AWS::DynamoDB::Table")
            .map(|(id, p)| {
                Ok(TableSpec {
                    logical_id: id.to_owned(),
                    name: plain(&self.names.refs[id]),
                    properties: self.resolver().resolve(p)?,
                })
            })
            .collect()
    }

    pub fn queues(&self) -> Result<Vec<QueueSpec>, TemplateError> {
        self.template
            .resources_of_type("AWS::SQS::Queue")
            .map(|(id, p)| {
                Ok(QueueSpec {
                    logical_id: id.to_owned(),
                    name: plain(&self.names.attrs[&(id.to_owned(), "QueueName".to_owned())]),
                    properties: self.resolver().resolve(p)?,
                })
            })
            .collect()
    }

    /// The secrets the template creates under the parameters in force (a resource's `Condition` respected).
    pub fn secrets(&self) -> Result<Vec<SecretSpec>, TemplateError> {
        let mut out = Vec::new();
        for (id, _) in self.template.resources_of_type("AWS::SecretsManager::Secret") {
            let condition = self
                .template
                .resource(id)
                .and_then(|r| r.get("Condition"))
                .and_then(Value::as_str);
            if let Some(c) = condition
                && !self.resolver().condition(c)?
            {
                continue;
            }
            out.push(SecretSpec {
                logical_id: id.to_owned(),
                name: format!("{}{id}", self.naming.prefix),
            });
        }
        Ok(out)
    }

    /// Records the ARN the emulator gave a secret: what `!Ref` of it resolves to.
    pub fn set_secret_arn(&mut self, logical_id: &str, arn: &str) {
        self.names.refs.insert(logical_id.to_owned(), arn.into());
    }

    /// Rewrites the AWS management endpoint of this API to the local gateway.
    fn localize(&self, value: String) -> String {
        let Some(gateway) = &self.naming.gateway else {
            return value;
        };
        let aws = format!(
            "https://{}.execute-api.{}.amazonaws.com",
            self.naming.api_id, self.naming.region
        );
        match value.strip_prefix(&aws) {
            Some(rest) => format!("{}{rest}", gateway.trim_end_matches('/')),
            None => value,
        }
    }

    pub fn functions(&self) -> Result<Vec<FunctionSpec>, TemplateError> {
        let mut out = Vec::new();
        let ids: Vec<String> = self
            .template
            .resources()
            .filter(|(_, t, _)| *t == "AWS::Serverless::Function")
            .map(|(id, _, _)| id.to_owned())
            .collect();
        for id in ids {
            let r = self.resolver();
            let prop = |k: &str| -> Result<Option<Value>, TemplateError> {
                self.template
                    .function_property(&id, k)
                    .map(|v| r.resolve(&v))
                    .transpose()
            };
            let mut env = BTreeMap::new();
            if let Some(e) = prop("Environment")? {
                for (k, v) in e["Variables"].as_object().into_iter().flatten() {
                    env.insert(k.clone(), self.localize(plain(v)));
                }
            }
            let binary = self
                .template
                .resource(&id)
                .and_then(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str())
                .map(str::to_owned);
            let binary =
                binary.ok_or_else(|| err(format!("{id}: Metadata.BuildProperties.Binary names its cargo binary")))?;
            let num =
                |v: Option<Value>, default: u64| v.map(|v| plain(&v).parse().unwrap_or(default)).unwrap_or(default);
            let mut sqs_sources = Vec::new();
            let mut stream_sources = Vec::new();
            let events = self
                .template
                .resource(&id)
                .and_then(|r| r["Properties"].get("Events"))
                .cloned();
            for (_, ev) in events.as_ref().and_then(Value::as_object).into_iter().flatten() {
                if ev["Type"] == "DynamoDB" {
                    stream_sources.push(crate::stream_source::StreamSource::of(
                        self,
                        &id,
                        &r.resolve(&ev["Properties"])?,
                    )?);
                    continue;
                }
                if ev["Type"] != "SQS" {
                    continue;
                }
                let p = r.resolve(&ev["Properties"])?;
                let arn = plain(&p["Queue"]);
                let queue = self
                    .names
                    .attrs
                    .iter()
                    .find(|((qid, a), v)| {
                        a == "Arn"
                            && plain(v) == arn
                            && self
                                .template
                                .resource(qid)
                                .is_some_and(|res| res["Type"] == "AWS::SQS::Queue")
                    })
                    .map(|((qid, _), _)| qid.clone())
                    .ok_or_else(|| err(format!("{id}: SQS event source {arn} is not a queue of this template")))?;
                sqs_sources.push(SqsSource {
                    queue,
                    batch_size: p.get("BatchSize").map(|v| plain(v).parse().unwrap_or(10)).unwrap_or(10),
                    window_secs: p
                        .get("MaximumBatchingWindowInSeconds")
                        .map(|v| plain(v).parse().unwrap_or(0))
                        .unwrap_or(0),
                    report_failures: p["FunctionResponseTypes"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|t| t == "ReportBatchItemFailures")),
                });
            }
            let timeout_secs = num(prop("Timeout")?, 3);
            let memory_mb = num(prop("MemorySize")?, 128);
            out.push(FunctionSpec {
                name: plain(&self.names.refs[&id]),
                logical_id: id,
                binary,
                env,
                timeout_secs,
                memory_mb,
                sqs_sources,
                stream_sources,
            });
        }
        Ok(out)
    }

    /// The WebSocket API: its routes, each with the function behind it.
    pub fn api(&self) -> Result<ApiSpec, TemplateError> {
        let r = self.resolver();
        let (api_id, api) = self
            .template
            .resources_of_type("AWS::ApiGatewayV2::Api")
            .find(|(_, p)| p["ProtocolType"] == "WEBSOCKET")
            .ok_or_else(|| err("no WEBSOCKET AWS::ApiGatewayV2::Api"))?;
        let route_selection = plain(&r.resolve(&api["RouteSelectionExpression"])?);
        // An integration or authorizer URI names its function as `.../functions/{Arn}/invocations`.
        let function_of = |uri: &Value| -> Result<String, TemplateError> {
            let uri = plain(&r.resolve(uri)?);
            self.names
                .attrs
                .iter()
                .find(|((fid, a), v)| {
                    a == "Arn"
                        && self
                            .template
                            .resource(fid)
                            .is_some_and(|res| res["Type"] == "AWS::Serverless::Function")
                        && uri.contains(&format!("functions/{}/invocations", plain(v)))
                })
                .map(|((fid, _), _)| fid.clone())
                .ok_or_else(|| err(format!("no function behind {uri}")))
        };
        let mut routes = Vec::new();
        for (route_id, p) in self.template.resources_of_type("AWS::ApiGatewayV2::Route") {
            let p = r.resolve(p)?;
            if plain(&p["ApiId"]) != self.naming.api_id {
                continue;
            }
            let target = plain(&p["Target"]);
            let integration_id = target
                .strip_prefix("integrations/")
                .ok_or_else(|| err(format!("{route_id}: Target")))?;
            let integration = self
                .template
                .resource(integration_id)
                .ok_or_else(|| err(format!("{route_id}: no integration {integration_id}")))?;
            let function = function_of(&integration["Properties"]["IntegrationUri"])?;
            let responds = self
                .template
                .resources_of_type("AWS::ApiGatewayV2::RouteResponse")
                .any(|(_, rr)| rr["RouteId"].get("Ref").and_then(Value::as_str) == Some(route_id));
            let authorizer = if p["AuthorizationType"] == "CUSTOM" {
                let auth_id = plain(&p["AuthorizerId"]);
                let auth = self
                    .template
                    .resource(&auth_id)
                    .ok_or_else(|| err(format!("{route_id}: no authorizer {auth_id}")))?;
                let sources: Vec<String> = r
                    .resolve(&auth["Properties"]["IdentitySource"])?
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(plain)
                    .collect();
                Some(AuthorizerSpec {
                    function: function_of(&auth["Properties"]["AuthorizerUri"])?,
                    query_identity: sources
                        .iter()
                        .filter_map(|s| s.strip_prefix("route.request.querystring.").map(str::to_owned))
                        .collect(),
                    header_identity: sources
                        .iter()
                        .filter_map(|s| s.strip_prefix("route.request.header.").map(str::to_owned))
                        .collect(),
                })
            } else {
                None
            };
            routes.push(RouteSpec {
                key: plain(&p["RouteKey"]),
                function,
                responds,
                authorizer,
            });
        }
        let _ = api_id;
        let stage = self
            .template
            .resources_of_type("AWS::ApiGatewayV2::Stage")
            .next()
            .map(|(_, p)| r.resolve(p))
            .transpose()?
            .unwrap_or(Value::Null);
        let settings = &stage["DefaultRouteSettings"];
        Ok(ApiSpec {
            route_selection,
            routes,
            stage: stage.get("StageName").map(plain).unwrap_or_else(|| "local".into()),
            rate_limit: settings.get("ThrottlingRateLimit").and_then(|v| plain(v).parse().ok()),
            burst_limit: settings.get("ThrottlingBurstLimit").and_then(|v| plain(v).parse().ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn stack(gateway: Option<&str>) -> Stack {
        let t = Template::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")).unwrap();
        let mut naming = Naming::local("http://127.0.0.1:5000");
        naming.prefix = "t1_".into();
        naming.gateway = gateway.map(str::to_owned);
        Stack::new(t, naming, &HashMap::new()).unwrap()
    }

    #[test]
    fn functions_get_their_environment_from_the_template() {
        let s = stack(Some("http://127.0.0.1:3001"));
        let send = s
            .functions()
            .unwrap()
            .into_iter()
            .find(|f| f.logical_id == "SendFunction")
            .unwrap();
        assert_eq!(send.binary, "natter-send");
        assert_eq!(send.env["MESSAGES_TABLE"], "t1_MessagesTable");
        assert_eq!(
            send.env["FANOUT_QUEUE_URL"],
            "http://127.0.0.1:5000/000000000000/t1_FanoutQueue"
        );
        assert_eq!(
            send.env["MANAGEMENT_ENDPOINT"], "http://127.0.0.1:3001/dev",
            "pointed at the local gateway"
        );
        assert_eq!(send.timeout_secs, 6);
        let index = s
            .functions()
            .unwrap()
            .into_iter()
            .find(|f| f.logical_id == "IndexFunction")
            .unwrap();
        assert_eq!(index.sqs_sources.len(), 1);
        assert_eq!(index.sqs_sources[0].queue, "IndexQueue");
        assert!(index.sqs_sources[0].report_failures);
        let stream = &index.stream_sources[0];
        assert_eq!((stream.table.as_str(), stream.batch_size), ("MessagesTable", 100));
        assert_eq!(
            (stream.max_retries, stream.on_failure.as_deref()),
            (10, Some("IndexDeadLetterQueue"))
        );
        assert_eq!(stream.filters.len(), 1);
    }

    #[test]
    fn missing_parameters_are_named() {
        let t = Template::parse("Parameters:\n  Needed:\n    Type: String\nResources: {}\n").unwrap();
        let e = Stack::new(t, Naming::local("http://x"), &HashMap::new()).err().unwrap();
        assert!(e.to_string().contains("Needed"), "{e}");
    }

    #[test]
    fn routes_map_to_functions() {
        let api = stack(None).api().unwrap();
        assert_eq!(api.route_selection, "$request.body.action");
        let route = |k: &str| api.routes.iter().find(|r| r.key == k).unwrap().clone();
        assert_eq!(route("send").function, "SendFunction");
        assert!(route("send").responds);
        assert!(!route("$disconnect").responds);
        let auth = route("$connect").authorizer.unwrap();
        assert_eq!(
            (auth.function.as_str(), auth.query_identity.clone()),
            ("AuthorizerFunction", vec!["token".to_owned()])
        );
        assert_eq!(api.stage, "dev");
    }
}
