//! Azure OpenAI's routes, as an adapter in front of the OpenAI ones: both URL shapes
//! (`/openai/deployments/{deployment}/images/{generations,edits}?api-version=...` and the v1
//! API `/openai/v1/...`), the `api-key` header (or an Entra ID bearer token), the
//! `api-version` rules, deployment names, Azure's own error bodies (a string `code`, no
//! `type`; `inner_error` with `content_filter_results` on a content-filter rejection) and its
//! headers (`apim-request-id`, `x-ms-region`, `x-ms-deployment-name`).
//!
//! The checks Azure makes itself (the key, the path and version, the deployment) are answered
//! here in its shapes; everything else runs through the OpenAI handlers, which are what an
//! Azure deployment of an OpenAI model runs, and a `moderation_blocked` answer is restated as
//! Azure's content filter.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::EmulatorError;
use crate::state::EmulatorState;

/// The `x-ms-region` the emulator reports.
const REGION: &str = "fourk emulator (offline)";

/// The `api-version` values the deployment URLs accept (those documented for GPT Image
/// models, and later ones of the same form).
fn version_ok(v: &str) -> bool {
    // YYYY-MM-DD or YYYY-MM-DD-preview, from 2025-04-01 on (the first with gpt-image).
    let date = v.strip_suffix("-preview").unwrap_or(v);
    date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-' && date >= "2025-04-01"
}

/// How a request reached an image route through Azure's URLs; the handlers read it to map
/// the deployment name to the model it serves.
#[derive(Debug, Clone)]
pub(crate) enum AzureRoute {
    /// `/openai/deployments/{deployment}/...`: the deployment is in the URL.
    Deployment(String),
    /// `/openai/v1/...`: the body's `model` names the deployment.
    V1,
}

/// An Azure-shaped error: `{"error": {"code": CODE, "message": MESSAGE}}`.
fn azure_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// The deployment's model: a name configured with `--deployment NAME=MODEL`, else a model id
/// or alias of the capability table (a deployment named after its model, Azure's default).
pub(crate) fn model_of(state: &EmulatorState, deployment: &str) -> Option<String> {
    if let Some((_, model)) = state.config.deployments.iter().find(|(d, _)| d == deployment) {
        return Some(model.clone());
    }
    state
        .config
        .capabilities
        .model(deployment)
        .ok()
        .map(|m| m.id.clone())
}

/// The error when a deployment name serves no model.
pub(crate) fn deployment_not_found() -> EmulatorError {
    EmulatorError::DeploymentNotFound
}

/// Replace the deployment name in a request body's `model` with the model it serves, for a
/// request that came through Azure's routes; others are left alone.
///
/// # Errors
/// [`EmulatorError::DeploymentNotFound`] when the name serves nothing.
pub(crate) fn map_model(
    state: &EmulatorState,
    route: Option<&AzureRoute>,
    json: &mut Value,
) -> Result<(), EmulatorError> {
    let name = match route {
        None => return Ok(()),
        Some(AzureRoute::Deployment(d)) => d.clone(),
        Some(AzureRoute::V1) => match json.get("model").and_then(Value::as_str) {
            Some(m) => m.to_owned(),
            // A missing model is the handler's error to report.
            None => return Ok(()),
        },
    };
    let model = model_of(state, &name).ok_or_else(deployment_not_found)?;
    if let Some(obj) = json.as_object_mut() {
        obj.insert("model".into(), Value::String(model));
    }
    Ok(())
}

/// The adapter: answers Azure's own checks, rewrites the path to the OpenAI route and the
/// key to a bearer, runs the request, then restates the answer in Azure's shapes.
pub(crate) async fn adapter(
    State(state): State<Arc<EmulatorState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/openai/") else {
        return next.run(req).await;
    };
    let version = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("api-version=")))
        .map(str::to_owned);
    let (inner, route, deployment) = if let Some(v1) = rest.strip_prefix("v1/") {
        if version
            .as_deref()
            .is_some_and(|v| !matches!(v, "preview" | "latest" | "v1"))
        {
            return azure_error(StatusCode::BAD_REQUEST, "BadRequest", "API version not supported");
        }
        let route = matches!(v1, "images/generations" | "images/edits").then_some(AzureRoute::V1);
        (format!("/v1/{v1}"), route, None)
    } else if let Some(dep) = rest.strip_prefix("deployments/") {
        let Some((name, op)) = dep.split_once('/') else {
            return azure_error(StatusCode::NOT_FOUND, "404", "Resource not found");
        };
        if !matches!(op, "images/generations" | "images/edits") || !version.as_deref().is_some_and(version_ok)
        {
            return azure_error(StatusCode::NOT_FOUND, "404", "Resource not found");
        }
        (
            format!("/v1/{op}"),
            Some(AzureRoute::Deployment(name.to_owned())),
            Some(name.to_owned()),
        )
    } else {
        // Other resource-level paths (`/openai/responses?api-version=`): the v1 handlers.
        if !version.as_deref().is_some_and(version_ok) {
            return azure_error(StatusCode::NOT_FOUND, "404", "Resource not found");
        }
        (format!("/v1/{rest}"), None, None)
    };
    // The key: `api-key`, or an Entra ID token as a bearer, checked as the OpenAI routes check
    // theirs, answered in Azure's words.
    let headers = req.headers_mut();
    if let Some(key) = headers.remove("api-key") {
        let mut bearer = b"Bearer ".to_vec();
        bearer.extend_from_slice(key.as_bytes());
        match HeaderValue::from_bytes(&bearer) {
            Ok(v) => {
                headers.insert(AUTHORIZATION, v);
            }
            Err(_) => headers.remove(AUTHORIZATION).map_or((), drop),
        }
    }
    if state.authorize(req.headers()).is_err() {
        return azure_error(
            StatusCode::UNAUTHORIZED,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        );
    }
    if let Some(d) = &deployment
        && model_of(&state, d).is_none()
    {
        return EmulatorError::DeploymentNotFound.into_response();
    }
    let query = req.uri().query().map(str::to_owned);
    let uri = match query {
        Some(q) => format!("{inner}?{q}"),
        None => inner,
    };
    match uri.parse::<Uri>() {
        Ok(u) => *req.uri_mut() = u,
        Err(_) => return azure_error(StatusCode::NOT_FOUND, "404", "Resource not found"),
    }
    if let Some(route) = route {
        req.extensions_mut().insert(route);
    }
    req.extensions_mut().insert(crate::state::ArrivedOn(path.clone()));
    let response = next.run(req).await;
    restate(response, deployment.as_deref()).await
}

/// Azure's headers on every answer, and a content-policy rejection as Azure's content filter.
async fn restate(response: Response, deployment: Option<&str>) -> Response {
    let (mut parts, body) = response.into_parts();
    if let Some(id) = parts.headers.get("x-request-id").cloned() {
        parts.headers.insert("apim-request-id", id);
    }
    parts
        .headers
        .insert("x-ms-region", HeaderValue::from_static(REGION));
    if let Some(d) = deployment.and_then(|d| HeaderValue::from_str(d).ok()) {
        parts.headers.insert("x-ms-deployment-name", d);
    }
    if parts.status != StatusCode::BAD_REQUEST {
        return Response::from_parts(parts, body);
    }
    // An error body is small; 1 MB bounds it.
    let Ok(bytes) = to_bytes(body, 1 << 20).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let filtered = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(|v| v["error"]["code"] == "moderation_blocked");
    let Some(original) = filtered else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let body = json!({"error": {
        "code": "content_policy_violation",
        "message": "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
        "param": Value::Null,
        "type": "invalid_request_error",
        "inner_error": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_results": {
                "hate": {"filtered": false, "severity": "safe"},
                "self_harm": {"filtered": false, "severity": "safe"},
                "sexual": {"filtered": false, "severity": "safe"},
                "violence": {"filtered": true, "severity": "medium"},
            },
            "emulator_note": original["error"]["message"],
        },
    }});
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_versions_from_the_first_gpt_image_one_are_accepted() {
        assert!(version_ok("2025-04-01-preview"));
        assert!(version_ok("2026-06-01"));
        assert!(!version_ok("2024-10-21"));
        assert!(!version_ok("v1"));
        assert!(!version_ok("2025-4-1"));
    }
}
