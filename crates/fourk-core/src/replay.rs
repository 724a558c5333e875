//! Send a request from the payload log again (`fourk replay`): reproduce a problem against
//! the emulator, a gateway or the API. It is a real request that may be billed, so it goes
//! on record like every other: the attempt and its estimate before it leaves, the measured
//! usage when an Image API answer says it, the failure otherwise.

use std::path::PathBuf;

use fourk_api::{ImageEndpoint, Quality, RouteLabel, Size};
use fourk_client::Logged;
use serde::Serialize;
use serde_json::{Value, json};

use crate::send::{self, Cancelled, Control, Estimate, Recorder};
use crate::session::{Endpoint, Session};

/// What to send again, and where.
#[derive(Debug, Clone)]
pub struct ReplaySpec {
    /// A `*.request.json` file of a payload log, or the log's folder (its newest request).
    pub path: PathBuf,
    /// Where it goes (the emulator, a gateway, the API).
    pub endpoint: Endpoint,
}

/// What came back.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// HTTP status.
    pub status: u16,
    /// `x-request-id`.
    pub request_id: Option<String>,
    /// Attempts the client made (retries included).
    pub attempts: u32,
    /// Wall time of the last attempt.
    pub elapsed_ms: u128,
    /// Size of the answer's body.
    pub body_bytes: usize,
    /// The answer came from fourk's emulator.
    pub emulator: bool,
}

/// The request's predicted cost, from its logged fields: the Image API's `model`, `prompt`,
/// `size`, `quality`, `n`, or the Responses API's `image_generation` tool.
fn estimate(caps: &fourk_api::Capabilities, endpoint: ImageEndpoint, fields: &Value) -> Option<Estimate> {
    let text = |v: &Value, k: &str| match &v[k] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let (source, prompt, n) = match endpoint {
        ImageEndpoint::Responses => {
            let tools = fields["tools"].as_array()?;
            let tool = tools.iter().find(|t| t["type"] == "image_generation")?;
            let prompt = match &fields["input"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (tool, prompt, 1)
        }
        _ => (
            fields,
            text(fields, "prompt").unwrap_or_default(),
            text(fields, "n").and_then(|n| n.parse::<u8>().ok()).unwrap_or(1),
        ),
    };
    let model_id = text(source, "model").unwrap_or_else(|| fourk_api::DEFAULT_MODEL.to_owned());
    let model = caps.model(&model_id).ok()?;
    let size = text(source, "size").and_then(|s| s.parse::<Size>().ok());
    let quality = text(source, "quality").and_then(|q| q.parse::<Quality>().ok());
    let mut e = send::predict(model, &prompt, size, quality, n, &[])?;
    e.key = send::usage_key(
        &model.id,
        quality.map(Quality::as_str),
        size.map(|s| s.to_string()).as_deref(),
        u32::from(n),
    );
    Some(e)
}

/// Send the logged request at `spec.path` again, on record in the ledger.
///
/// # Errors
/// A log that cannot be read back ([`fourk_client::ClientError::Replay`]), the call's own
/// error (an API error status included), [`Cancelled`].
pub async fn replay(spec: &ReplaySpec, fk: &crate::Fourk, control: &Control) -> anyhow::Result<ReplayReport> {
    let path = spec.path.clone();
    let logged = tokio::task::spawn_blocking(move || Logged::load(&path))
        .await
        .map_err(|e| anyhow::anyhow!("reading the payload log failed: {e}"))??;
    let endpoint = ImageEndpoint::from_path(logged.endpoint());
    let route = endpoint.map_or_else(|| RouteLabel::parse(logged.endpoint()), ImageEndpoint::label);
    let fields = logged.fields();
    let est = endpoint.and_then(|e| estimate(&fk.caps, e, &fields));
    let price = est
        .as_ref()
        .and_then(|e| fk.caps.model(&e.key.model).ok())
        .and_then(|m| m.price);
    control.check()?;
    let session = Session::connect(&spec.endpoint, &fk.caps).await?;
    let rec = Recorder::new(
        fk.ledger_path(),
        "replay",
        json!({"path": std::path::absolute(&spec.path).unwrap_or_else(|_| spec.path.clone())}),
    )
    .with_control(control.clone());
    let attempt = rec.sending(route.as_str(), session.provider(), est.as_ref());
    let result = tokio::select! {
        r = logged.send(&session.client) => r,
        () = control.cancel_token().cancelled() => {
            rec.interrupt("cancelled after the request was sent");
            session.close().await;
            return Err(Cancelled { possibly_billed: true }.into());
        }
    };
    session.close().await;
    match result {
        Ok(resp) => {
            // An Image API answer says what it used; a Responses answer keeps the estimate.
            let measured = est.as_ref().and_then(|e| {
                resp.images()
                    .ok()
                    .and_then(|r| Estimate::measured(&e.key, r.usage, price, &r.settings))
            });
            rec.answered(attempt, resp.request_id.as_deref(), measured.as_ref());
            rec.finish_as(crate::ledger::RunStatus::Ok);
            Ok(ReplayReport {
                status: resp.status,
                request_id: resp.request_id.clone(),
                attempts: resp.attempts,
                elapsed_ms: resp.elapsed.as_millis(),
                body_bytes: resp.body.len(),
                emulator: resp.emulator.is_some(),
            })
        }
        Err(e) => {
            rec.failed_call(attempt, &e, None);
            rec.finish_as(crate::ledger::RunStatus::Failed);
            Err(e.into())
        }
    }
}
