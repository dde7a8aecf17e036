//! The REQUEST authorizer of `$connect`: the `token` query parameter must be an HS256 JWT signed with the
//! deployment's secret; its `sub` becomes the connection's user, passed to every route in the authorizer context.
//! A missing token answers `Unauthorized` (HTTP 401 at the upgrade); a refused one a Deny policy (403).

use natter_core::{
    auth::{TokenError, TokenVerifier},
    lambda::{
        ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
        ApiGatewayCustomAuthorizerResponse, IamPolicyEffect, IamPolicyStatement, LambdaEvent, USER_ID_KEY,
    },
};
use tracing::{info, warn};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Reads `JWT_SECRET` at init; a secret shorter than 32 bytes stops the function from starting.
pub fn verifier_from_env() -> Result<TokenVerifier, Error> {
    let secret = std::env::var("JWT_SECRET").map_err(|_| "environment variable JWT_SECRET is not set")?;
    Ok(TokenVerifier::new(secret.as_bytes())?)
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
