//! `POST /v1/images/generations`: the same checks as the real endpoint, then procedural
//! images in the real response shape, as one JSON body or (`stream: true`) as events.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use fourk_api::ImageRequest;
use serde_json::Value;

use crate::error::EmulatorError;
use crate::images::{Endpoint, respond};
use crate::plan::{Fidelity, Plan};
use crate::policy::{self, Verdict};
use crate::state::{EmulatorState, RequestContext};

/// The handler (the router checked the key), with the rate-limit headers on every answer.
pub(crate) async fn generations(
    State(state): State<Arc<EmulatorState>>,
    Extension(ctx): Extension<Arc<RequestContext>>,
    azure: Option<Extension<crate::azure::AzureRoute>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let azure = azure.map(|Extension(a)| a);
    state.answer(generate(&state, &ctx, azure.as_ref(), body)).await
}

async fn generate(
    state: &Arc<EmulatorState>,
    ctx: &RequestContext,
    azure: Option<&crate::azure::AzureRoute>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, EmulatorError> {
    let mut json = crate::state::json_request(state, body)?;
    crate::azure::map_model(state, azure, &mut json)?;
    let req = read_request(&json)?;
    ctx.set_prompt(&req.prompt);
    let plan = plan_generation(state, ctx, &req)?;
    let stream = (req.stream == Some(true)).then(|| req.partial_images.unwrap_or(0));
    respond(state, plan, stream, Endpoint::Generations).await
}

/// [`ImageRequest::from_json`], its violation answered as the API does (naming the model the
/// body asked for, if any).
pub(crate) fn read_request(json: &Value) -> Result<ImageRequest, EmulatorError> {
    ImageRequest::from_json(json).map_err(invalid_body(json))
}

/// The answer to a violation found while reading `json`: the model it names goes into the
/// error, as the API's own messages do.
pub(crate) fn invalid_body(json: &Value) -> impl FnOnce(fourk_api::Violation) -> EmulatorError + '_ {
    move |violation| EmulatorError::Invalid {
        violation,
        model: json
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    }
}

/// The checks and the plan of a generation: the option rules, the on-demand policy answers,
/// then the image to render. The live endpoint and Batch API lines both run through here.
pub(crate) fn plan_generation(
    state: &EmulatorState,
    ctx: &RequestContext,
    req: &ImageRequest,
) -> Result<Plan, EmulatorError> {
    let model = validate(state, req)?;
    check_policy(state, ctx, req)?;
    Ok(Plan::resolve(req, model, None, Fidelity::High, ctx.fault))
}

/// [`ImageRequest::validate`], with the first violation as the answer.
pub(crate) fn validate<'s>(
    state: &'s EmulatorState,
    req: &ImageRequest,
) -> Result<&'s fourk_api::ModelCaps, EmulatorError> {
    let (model, warnings) =
        req.validate(&state.config.capabilities).map_err(|violations| {
            match violations.into_iter().next() {
                Some(violation) => EmulatorError::Invalid {
                    violation,
                    model: req.model.clone(),
                },
                None => EmulatorError::Internal("validation failed without a violation".into()),
            }
        })?;
    for w in &warnings {
        tracing::debug!(id = w.id, "{}", w.message);
    }
    Ok(model)
}

/// Organisation verification and moderation, on demand (see [`crate::policy`]).
pub(crate) fn check_policy(
    state: &EmulatorState,
    ctx: &RequestContext,
    req: &ImageRequest,
) -> Result<(), EmulatorError> {
    match policy::judge(&state.config, &req.prompt) {
        Verdict::Allowed => Ok(()),
        Verdict::OrganizationNotVerified => Err(EmulatorError::OrganizationNotVerified {
            model: req.model.clone(),
        }),
        Verdict::ModerationBlocked => Err(EmulatorError::ModerationBlocked {
            request_id: ctx.id.clone(),
        }),
    }
}
