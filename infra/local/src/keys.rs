//! Each function's own credentials in the emulator: an IAM user per function and an access key of it, as a
//! Lambda function has its role's. The emulator then knows every key a function signs with, so it verifies the
//! presigned S3 URLs a function hands out (an unknown key is `InvalidAccessKeyId` there, as on AWS), and the proxy
//! tells the functions apart by key for its IAM check (`iam.rs`).
//!
//! The calls are IAM's query API over plain HTTP: emulators do not verify the signature of these (natter-local is
//! their administrator), and no IAM SDK needs building for two calls.

use crate::provision::ProvisionError;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use std::collections::HashMap;

/// A function's access key id and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

fn err(user: &str, message: impl Into<String>) -> ProvisionError {
    ProvisionError::Credentials {
        user: user.to_owned(),
        message: message.into(),
    }
}

/// One IAM query call: the response body, or the error's text.
async fn call(endpoint: &str, params: &[(&str, &str)]) -> Result<(u16, String), String> {
    let body = serde_urlencoded::to_string(params).map_err(|e| e.to_string())?;
    let request = http::Request::post(endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        // Routed to IAM by its credential scope; the signature is not checked by the emulator.
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(Full::new(axum::body::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
}

/// The text of the first `<tag>` element of an XML answer.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    elements(xml, tag).into_iter().next()
}

/// The texts of every `<tag>` element of an XML answer.
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open).map(|i| i + open.len()) {
        let Some(len) = rest[start..].find(&close) else {
            break;
        };
        out.push(&rest[start..start + len]);
        rest = &rest[start + len + close.len()..];
    }
    out
}

/// Creates (or finds) a user per function name and a fresh access key of it.
pub async fn function_keys(endpoint: &str, names: &[String]) -> Result<HashMap<String, AccessKey>, ProvisionError> {
    let mut out = HashMap::new();
    for name in names {
        let (status, text) = call(
            endpoint,
            &[("Action", "CreateUser"), ("UserName", name), ("Version", "2010-05-08")],
        )
        .await
        .map_err(|e| err(name, e))?;
        if status != 200 && !text.contains("EntityAlreadyExists") {
            return Err(err(name, format!("CreateUser: {status} {text}")));
        }
        // A user kept from an earlier start against the same emulator: its old keys go (IAM allows two per user).
        let listing = [
            ("Action", "ListAccessKeys"),
            ("UserName", name.as_str()),
            ("Version", "2010-05-08"),
        ];
        let (_, listed) = call(endpoint, &listing).await.map_err(|e| err(name, e))?;
        for old in elements(&listed, "AccessKeyId") {
            let delete = [
                ("Action", "DeleteAccessKey"),
                ("UserName", name.as_str()),
                ("AccessKeyId", old),
                ("Version", "2010-05-08"),
            ];
            call(endpoint, &delete).await.map_err(|e| err(name, e))?;
        }
        let (status, text) = call(
            endpoint,
            &[
                ("Action", "CreateAccessKey"),
                ("UserName", name),
                ("Version", "2010-05-08"),
            ],
        )
        .await
        .map_err(|e| err(name, e))?;
        let key = match (status, element(&text, "AccessKeyId"), element(&text, "SecretAccessKey")) {
            (200, Some(id), Some(secret)) => AccessKey {
                id: id.to_owned(),
                secret: secret.to_owned(),
            },
            _ => return Err(err(name, format!("CreateAccessKey: {status} {text}"))),
        };
        out.insert(name.clone(), key);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::element;

    #[test]
    fn reads_the_key_out_of_the_answer() {
        let xml = "<CreateAccessKeyResponse><AccessKey><UserName>f</UserName><AccessKeyId>AKIA1</AccessKeyId>\
                   <SecretAccessKey>s3cr3t</SecretAccessKey></AccessKey></CreateAccessKeyResponse>";
        assert_eq!(element(xml, "AccessKeyId"), Some("AKIA1"));
        assert_eq!(element(xml, "SecretAccessKey"), Some("s3cr3t"));
        assert_eq!(element(xml, "Missing"), None);
        let listed = "<AccessKeyMetadata><member><AccessKeyId>A1</AccessKeyId></member>\
                      <member><AccessKeyId>A2</AccessKeyId></member></AccessKeyMetadata>";
        assert_eq!(super::elements(listed, "AccessKeyId"), ["A1", "A2"]);
    }
}
