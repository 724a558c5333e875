//! The stylesheet and the script, embedded in the binary: the studio needs no CDN, no
//! network and no build step.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::Studio;

const CSS: &str = include_str!("../assets/studio.css");
const JS: &str = include_str!("../assets/studio.js");

pub(crate) fn routes() -> Router<Studio> {
    Router::new()
        .route(
            "/assets/studio.css",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    CSS,
                )
                    .into_response()
            }),
        )
        .route(
            "/assets/studio.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    JS,
                )
                    .into_response()
            }),
        )
}
