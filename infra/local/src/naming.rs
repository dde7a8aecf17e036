//! How natter-local names what the template creates: tables, queues, functions, the API, topics and buckets get
//! local names (with the test prefix), ARNs and the attributes `!GetAtt` reads.

use crate::template::{Names, Resolver, Template, TemplateError, plain};
use serde_json::Value;

/// How local resources are named.
#[derive(Debug, Clone)]
pub struct Naming {
    /// Prepended to every table, queue and function name (tests isolate themselves with it).
    pub prefix: String,
    pub region: String,
    pub account: String,
    pub stack_name: String,
    /// The id the local WebSocket API answers to (`requestContext.apiId`).
    pub api_id: String,
    /// The emulator's endpoint (queue URLs are built on it until provisioning reports the real ones).
    pub emulator: String,
    /// Where the local gateway serves @connections, e.g. `http://127.0.0.1:3001`. Management endpoints the template
    /// builds for AWS (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`) are pointed here.
    pub gateway: Option<String>,
}

impl Naming {
    pub fn local(emulator: &str) -> Self {
        Self {
            prefix: String::new(),
            region: crate::emulator::DEFAULT_REGION.into(),
            account: crate::emulator::DEFAULT_ACCOUNT.into(),
            stack_name: "natter-local".into(),
            api_id: "natterlocal".into(),
            emulator: emulator.trim_end_matches('/').to_owned(),
            gateway: None,
        }
    }
}

pub(crate) fn name_resources(template: &Template, n: &Naming, names: &mut Names) -> Result<(), TemplateError> {
    let resources: Vec<(String, String, Value)> = template
        .resources()
        .map(|(id, t, p)| (id.to_owned(), t.to_owned(), p.clone()))
        .collect();
    for (id, kind, props) in resources {
        let own_name = |key: &str, names: &Names| -> Result<Option<String>, TemplateError> {
            match props.get(key) {
                Some(v) => Ok(Some(Resolver { template, names }.resolve_string(v)?)),
                None => Ok(None),
            }
        };
        match kind.as_str() {
            "AWS::DynamoDB::Table" => {
                let name = own_name("TableName", names)?.unwrap_or_else(|| format!("{}{id}", n.prefix));
                let arn = format!("arn:aws:dynamodb:{}:{}:table/{name}", n.region, n.account);
                names.attrs.insert((id.clone(), "Arn".into()), arn.clone().into());
                names
                    .attrs
                    .insert((id.clone(), "StreamArn".into()), format!("{arn}/stream/local").into());
                names.refs.insert(id, name.into());
            }
            "AWS::SQS::Queue" => {
                let fifo = props.get("FifoQueue").is_some_and(|v| plain(v) == "true");
                let name = own_name("QueueName", names)?
                    .unwrap_or_else(|| format!("{}{id}{}", n.prefix, if fifo { ".fifo" } else { "" }));
                names.attrs.insert(
                    (id.clone(), "Arn".into()),
                    format!("arn:aws:sqs:{}:{}:{name}", n.region, n.account).into(),
                );
                names
                    .attrs
                    .insert((id.clone(), "QueueName".into()), name.clone().into());
                names.attrs.insert(
                    (id.clone(), "QueueUrl".into()),
                    format!("{}/{}/{name}", n.emulator, n.account).into(),
                );
                names
                    .refs
                    .insert(id, format!("{}/{}/{name}", n.emulator, n.account).into());
            }
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => {
                let name = own_name("FunctionName", names)?.unwrap_or_else(|| format!("{}{id}", n.prefix));
                names.attrs.insert(
                    (id.clone(), "Arn".into()),
                    format!("arn:aws:lambda:{}:{}:function:{name}", n.region, n.account).into(),
                );
                names.refs.insert(id, name.into());
            }
            "AWS::ApiGatewayV2::Api" => {
                names.attrs.insert(
                    (id.clone(), "ApiEndpoint".into()),
                    format!("wss://{}.execute-api.{}.amazonaws.com", n.api_id, n.region).into(),
                );
                names.refs.insert(id, n.api_id.clone().into());
            }
            "AWS::S3::Bucket" => {
                let name = own_name("BucketName", names)?
                    .unwrap_or_else(|| crate::buckets::bucket_name(&format!("{}{id}", n.prefix)));
                names
                    .attrs
                    .insert((id.clone(), "Arn".into()), format!("arn:aws:s3:::{name}").into());
                names.refs.insert(id, name.into());
            }
            "AWS::SNS::Topic" => {
                names.refs.insert(
                    id.clone(),
                    format!("arn:aws:sns:{}:{}:{}{id}", n.region, n.account, n.prefix).into(),
                );
            }
            _ => {
                // Routes, integrations, permissions, alarms...: their ids only serve as references locally.
                names.attrs.insert(
                    (id.clone(), "Arn".into()),
                    format!("arn:aws:local:{}:{}:{id}", n.region, n.account).into(),
                );
                names.refs.insert(id.clone(), id.into());
            }
        }
    }
    Ok(())
}
