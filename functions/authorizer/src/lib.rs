//! The REQUEST authorizer of `$connect`: the `token` query parameter must be an HS256 JWT signed with the
//! deployment's secret; its `sub` becomes the connection's user, passed to every route in the authorizer context.
//! A missing token answers `Unauthorized` (HTTP 401 at the upgrade); a refused one a Deny policy (403).

use natter_core::{
    auth::{TokenError, TokenRules, TokenVerifier},
    lambda::{
        ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
        ApiGatewayCustomAuthorizerResponse, IamPolicyEffect, IamPolicyStatement, LambdaEvent, USER_ID_KEY,
    },
};
use tracing::{info, warn};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Fetches the signing key at init from AWS Secrets Manager (the secret `JWT_SECRET_ARN` names): never from a
/// plain environment variable, where anyone who can read the function's configuration would see it. A missing
/// secret, or one shorter than 32 bytes, stops the function from starting.
pub async fn verifier_from_secret() -> Result<TokenVerifier, Error> {
    let arn = std::env::var("JWT_SECRET_ARN").map_err(|_| "environment variable JWT_SECRET_ARN is not set")?;
    let sdk = natter_core::aws::sdk_config().await;
    let value = natter_core::aws::secrets::secret_string(&sdk, "token secret", &arn).await?;
    Ok(TokenVerifier::with_rules(value.as_bytes(), &rules_from_env()?)?)
}

/// The deployment's [`TokenRules`]: `TOKEN_MAX_LIFETIME_SECONDS` (unset: a day), `TOKEN_ISSUER` and
/// `TOKEN_AUDIENCE` (unset or empty: not checked).
pub fn rules_from_env() -> Result<TokenRules, Error> {
    let named = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    let max_lifetime_secs = match named("TOKEN_MAX_LIFETIME_SECONDS") {
        Some(v) => v
            .parse()
            .ok()
            .filter(|secs| *secs > 0)
            .ok_or_else(|| format!("TOKEN_MAX_LIFETIME_SECONDS: `{v}` is not a positive number of seconds"))?,
        None => natter_core::auth::DEFAULT_MAX_LIFETIME_SECS,
    };
    Ok(TokenRules {
        max_lifetime_secs,
        issuer: named("TOKEN_ISSUER"),
        audience: named("TOKEN_AUDIENCE"),
    })
}

fn policy(effect: IamPolicyEffect, resource: &str) -> ApiGatewayCustomAuthorizerPolicy {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = effect;
    statement.resource = vec![resource.to_owned()];
    let mut p = ApiGatewayCustomAuthorizerPolicy::default();
    p.version = Some("2012-10-17".to_owned());
    p.statement = vec![statement];
    p
}

pub async fn handle(
    verifier: &TokenVerifier,
    event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>,
) -> Result<ApiGatewayCustomAuthorizerResponse, Error> {
    let request = event.payload;
    let resource = request.method_arn.clone().unwrap_or_default();
    let source_ip = request
        .request_context
        .identity
        .as_ref()
        .and_then(|i| i.source_ip.clone())
        .unwrap_or_default();
    let token = request.query_string_parameters.first("token").unwrap_or_default();
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    match verifier.verify(token) {
        Ok(user) => {
            info!(%user, %source_ip, "connection authorized");
            response.principal_id = Some(user.to_string());
            response.policy_document = policy(IamPolicyEffect::Allow, &resource);
            response.context = serde_json::json!({ USER_ID_KEY: user.as_str() });
            Ok(response)
        }
        // API Gateway answers 401 to a authorizer that fails with exactly this message.
        Err(TokenError::Missing) => Err("Unauthorized".into()),
        Err(reason) => {
            warn!(%reason, %source_ip, "connection refused");
            response.principal_id = Some("anonymous".to_owned());
            response.policy_document = policy(IamPolicyEffect::Deny, &resource);
            Ok(response)
        }
    }
}
