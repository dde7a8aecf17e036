//! S3's CORS, enforced by the emulator proxy for the template's buckets: MiniStack (without its AUTH mode) and moto
//! answer every preflight and every response with `Access-Control-Allow-Origin: *`, kinder than S3, where a page
//! of an origin the bucket's `CorsConfiguration` does not name cannot upload or read. So the proxy answers the
//! preflights of these buckets itself and sets the `Access-Control-*` headers of their responses from the rules,
//! as S3 does: the first rule that allows the origin, the method and every requested header wins.

use crate::{buckets::BucketSpec, template::plain};
use axum::{
    body::Body,
    http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode},
};
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    pub headers: Vec<String>,
    pub expose: Vec<String>,
    pub max_age: Option<String>,
}

/// Each bucket's rules, by bucket name. A bucket without `CorsConfiguration` has an empty list: no origin may.
#[derive(Debug, Default)]
pub struct Cors {
    buckets: HashMap<String, Vec<Rule>>,
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().map(plain).collect(),
        Value::Null => Vec::new(),
        other => vec![plain(other)],
    }
}

/// `*` in an origin or header pattern stands for any characters.
fn matches(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(value),
        Some((head, tail)) => {
            value.len() >= head.len() + tail.len()
                && value[..head.len()].eq_ignore_ascii_case(head)
                && value[value.len() - tail.len()..].eq_ignore_ascii_case(tail)
        }
    }
}

impl Cors {
    pub fn new(buckets: &[BucketSpec]) -> Self {
        let buckets = buckets
            .iter()
            .map(|b| {
                let rules = b.properties["CorsConfiguration"]["CorsRules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| Rule {
                        origins: list(&r["AllowedOrigins"]),
                        methods: list(&r["AllowedMethods"]),
                        headers: list(&r["AllowedHeaders"]),
                        expose: list(&r["ExposedHeaders"]),
                        max_age: r.get("MaxAge").map(plain),
                    })
                    .collect();
                (b.name.clone(), rules)
            })
            .collect();
        Self { buckets }
    }

    /// The bucket a path-style request names, if it is one of the stack's.
    pub fn bucket_of<'a>(&self, path: &'a str) -> Option<&'a str> {
        let first = path.trim_start_matches('/').split(['/', '?']).next()?;
        self.buckets.contains_key(first).then_some(first)
    }

    /// The `Access-Control-*` headers S3 would answer for `origin` and `method` (and, in a preflight, the
    /// `requested` headers); `None` if no rule allows them.
    pub fn answer(
        &self,
        bucket: &str,
        origin: &str,
        method: &str,
        requested: &[String],
    ) -> Option<Vec<(String, String)>> {
        let rule = self.buckets.get(bucket)?.iter().find(|r| {
            r.origins.iter().any(|o| matches(o, origin))
                && r.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
                && requested.iter().all(|h| r.headers.iter().any(|p| matches(p, h)))
        })?;
        let any_origin = rule.origins.iter().all(|o| o == "*");
        let mut out = vec![(
            "access-control-allow-origin".to_owned(),
            if any_origin { "*".to_owned() } else { origin.to_owned() },
        )];
        if !any_origin {
            out.push((
                "vary".into(),
                "Origin, Access-Control-Request-Headers, Access-Control-Request-Method".into(),
            ));
        }
        out.push(("access-control-allow-methods".into(), rule.methods.join(", ")));
        if !requested.is_empty() {
            out.push(("access-control-allow-headers".into(), requested.join(", ")));
        }
        if !rule.expose.is_empty() {
            out.push(("access-control-expose-headers".into(), rule.expose.join(", ")));
        }
        if let Some(age) = &rule.max_age {
            out.push(("access-control-max-age".into(), age.clone()));
        }
        Some(out)
    }
}

/// S3's answer to a preflight: the rule's headers, or 403 when no rule allows the origin, method and headers.
pub fn preflight(cors: &Cors, bucket: &str, origin: &str, headers: &HeaderMap) -> Response<Body> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let method = header("access-control-request-method");
    let requested: Vec<String> = header("access-control-request-headers")
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    match cors.answer(bucket, origin, method, &requested) {
        Some(answer) => {
            let mut r = Response::new(Body::empty());
            for (k, v) in answer {
                if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                    r.headers_mut().insert(k, v);
                }
            }
            r
        }
        None => {
            let mut r = Response::new(Body::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessForbidden</Code><Message>CORSResponse: \
                 This CORS request is not allowed. This is usually because the evalution of Origin, request method / \
                 Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's \
                 CORS spec.</Message></Error>",
            ));
            *r.status_mut() = StatusCode::FORBIDDEN;
            r
        }
    }
}

/// Replaces the emulator's `Access-Control-*` headers with what the bucket's rules give this origin and method.
pub fn set_headers(cors: &Cors, bucket: &str, origin: Option<&str>, method: &str, headers: &mut HeaderMap) {
    let names: Vec<_> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for k in names {
        headers.remove(k);
    }
    let answer = origin.and_then(|o| cors.answer(bucket, o, method, &[]));
    for (k, v) in answer.into_iter().flatten() {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            headers.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cors(origins: Value) -> Cors {
        Cors::new(&[BucketSpec {
            logical_id: "B".into(),
            name: "bkt".into(),
            properties: json!({"CorsConfiguration": {"CorsRules": [
                {"AllowedMethods": ["PUT", "GET"], "AllowedOrigins": origins, "AllowedHeaders": ["*"], "MaxAge": 3600}
            ]}}),
        }])
    }

    #[test]
    fn the_first_rule_that_allows_origin_method_and_headers_answers() {
        let open = cors(json!(["*"]));
        let a = open
            .answer("bkt", "http://127.0.0.1:3001", "PUT", &["content-type".into()])
            .unwrap();
        assert!(a.contains(&("access-control-allow-origin".into(), "*".into())));
        assert!(
            open.answer("bkt", "http://x", "DELETE", &[]).is_none(),
            "a method no rule names"
        );
        let narrow = cors(json!(["https://app.example.com", "https://*.example.org"]));
        assert!(narrow.answer("bkt", "http://127.0.0.1:3001", "PUT", &[]).is_none());
        let a = narrow.answer("bkt", "https://app.example.com", "GET", &[]).unwrap();
        assert!(a.contains(&("access-control-allow-origin".into(), "https://app.example.com".into())));
        assert!(narrow.answer("bkt", "https://cdn.example.org", "GET", &[]).is_some());
        assert!(narrow.answer("other", "https://app.example.com", "GET", &[]).is_none());
        assert_eq!(narrow.bucket_of("/bkt/a/alice/1?X-Amz-Signature=x"), Some("bkt"));
        assert_eq!(narrow.bucket_of("/2012-11-05/queue"), None);
    }
}
