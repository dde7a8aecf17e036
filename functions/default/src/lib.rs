//! `$default`: frames no route takes. Malformed JSON gets `bad_request`; an action the API has no route for gets
//! `unknown_action`. Nothing is read or written.

use natter_core::{
    error::{Failure, Rejection},
    lambda::{self, Answer, ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest, LambdaEvent},
    ports::{JobQueue, Pusher, Store},
    service::App,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub async fn handle<S: Store, P: Pusher, Q: JobQueue>(
    app: &App<S, P, Q>,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    Ok(lambda::frame_route(app, &event.payload, |_caller, request| async move {
        // A well-formed frame of a known action lands here only if its route is not deployed: to the client the
        // action does not exist.
        Err::<Answer, Failure>(Failure::Rejected(Rejection::UnknownAction(format!(
            "action `{}` is not served by this deployment",
            request.frame.action()
        ))))
    })
    .await)
}
