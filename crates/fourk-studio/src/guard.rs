//! What every request to the studio passes before a page sees it.
//!
//! 1. `Host` must be `127.0.0.1:PORT`, `localhost:PORT` or `[::1]:PORT` (the studio's own
//!    port): a page on another site that points its name at 127.0.0.1 (DNS rebinding) sends
//!    its own name and is refused with 403.
//! 2. The token: `?token=T` on any page, when right, sets the cookie `fourk_studio_PORT=T`
//!    (HttpOnly, SameSite=Strict, Path=/) and redirects (303) to the same address without
//!    the token, so it leaves the address bar and the history. Afterwards the cookie is the
//!    proof. Without either, or with a wrong one: 401.
//! 3. Requests that change state (anything but GET, HEAD, OPTIONS) must come from the page
//!    itself: `Origin` present and equal to `http://HOST`, and `Sec-Fetch-Site`, when the
//!    browser sends it, `same-origin`. Otherwise 403.
//! 4. Every answer carries a strict Content-Security-Policy (`default-src 'self'`,
//!    `frame-ancestors 'none'`), `X-Content-Type-Options: nosniff` and
//!    `Referrer-Policy: no-referrer`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use subtle::ConstantTimeEq as _;

/// The Content-Security-Policy of every answer: only the studio's own scripts, styles,
/// images and connections; never framed; no plugins, no base rewriting, forms to itself.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A new random token: 16 bytes (128 bits) from the operating system, as 32 hex digits.
///
/// # Errors
/// When the operating system has no randomness to give.
pub fn random_token() -> anyhow::Result<String> {
    fourk_core::secret::random_token(16)
}

/// What the guard checks against: the port the studio listens on and its token.
#[derive(Debug, Clone)]
pub struct Guard {
    port: u16,
    token: Arc<str>,
    cookie: Arc<str>,
    /// One more `Host` (`IP:PORT`) for a studio served on a non-loopback address.
    extra_host: Option<Arc<str>>,
}

impl Guard {
    /// The guard of a studio on `port` with `token`.
    #[must_use]
    pub fn new(port: u16, token: &str) -> Self {
        Self {
            port,
            token: token.into(),
            cookie: cookie_name(port).into(),
            extra_host: None,
        }
    }

    /// Also answer to `host` (`IP:PORT`, the address given with `--allow-remote`).
    #[must_use]
    pub fn also_answering(mut self, host: &str) -> Self {
        self.extra_host = Some(host.into());
        self
    }

    /// The `Host` values this studio answers to.
    fn host_ok(&self, host: &str) -> bool {
        ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|name| host == format!("{name}:{}", self.port))
            || self.extra_host.as_deref() == Some(host)
    }

    fn token_ok(&self, given: &str) -> bool {
        bool::from(given.as_bytes().ct_eq(self.token.as_bytes()))
    }

    /// The token in the request's cookie, if it is this studio's.
    fn cookie_ok(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| name == &*self.cookie && self.token_ok(value))
    }
}

/// The cookie's name: it carries the port, so studios on two ports do not share a cookie
/// (cookies are per host, not per port).
#[must_use]
pub fn cookie_name(port: u16) -> String {
    format!("fourk_studio_{port}")
}

/// `uri` without its `token` query parameter (the other parameters kept, in order).
fn without_token(uri: &Uri) -> String {
    let rest: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("token=") && *p != "token")
        .collect();
    if rest.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{}", uri.path(), rest.join("&"))
    }
}

fn token_in(uri: &Uri) -> Option<&str> {
    uri.query()?.split('&').find_map(|p| p.strip_prefix("token="))
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let mut r = (status, format!("{message}\n")).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Cookie"));
    }
    r
}

/// The middleware: checks 1-3 of the module's list, then the headers of 4 on every answer
/// (refusals included).
pub async fn check(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let mut response = decide(&guard, req, next).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn decide(guard: &Guard, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !guard.host_ok(&host) {
        return refuse(
            StatusCode::FORBIDDEN,
            &format!(
                "this studio answers to 127.0.0.1:{0}, localhost:{0} or [::1]:{0} only (Host {host:?} refused, against DNS rebinding)",
                guard.port
            ),
        );
    }
    if let Some(given) = token_in(req.uri()) {
        if !guard.token_ok(given) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "wrong token: open the address `fourk studio` printed on its first line",
            );
        }
        let mut r = (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, without_token(req.uri()))],
        )
            .into_response();
        let cookie = format!(
            "{}={}; HttpOnly; SameSite=Strict; Path=/",
            guard.cookie, guard.token
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        return r;
    }
    if !guard.cookie_ok(req.headers()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "not signed in: open the address `fourk studio` printed on its first line (it carries the token)",
        );
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        let origin_ok = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| o == format!("http://{host}"));
        let site_ok = req
            .headers()
            .get("sec-fetch-site")
            .and_then(|s| s.to_str().ok())
            .is_none_or(|s| s == "same-origin");
        if !(origin_ok && site_ok) {
            return refuse(
                StatusCode::FORBIDDEN,
                "a request that changes something must come from the studio's own page (Origin and Sec-Fetch-Site checked)",
            );
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    const PORT: u16 = 40123;
    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn app() -> Router {
        let guard = Guard::new(PORT, TOKEN);
        Router::new()
            .route("/", get(|| async { "gallery" }).post(|| async { "made" }))
            .layer(axum::middleware::from_fn_with_state(guard, check))
    }

    async fn send(req: axum::http::request::Builder) -> Response {
        app().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    fn get_(uri: &str) -> axum::http::request::Builder {
        Request::builder()
            .uri(uri)
            .header(header::HOST, format!("127.0.0.1:{PORT}"))
    }

    fn signed_in(b: axum::http::request::Builder) -> axum::http::request::Builder {
        b.header(header::COOKIE, format!("other=1; {}={TOKEN}", cookie_name(PORT)))
    }

    #[tokio::test]
    async fn the_token_becomes_a_strict_cookie_and_leaves_the_address() {
        let r = send(get_(&format!("/?view=drafts&token={TOKEN}&n=3"))).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], "/?view=drafts&n=3");
        let cookie = r.headers()[header::SET_COOKIE].to_str().unwrap();
        assert_eq!(
            cookie,
            format!("fourk_studio_{PORT}={TOKEN}; HttpOnly; SameSite=Strict; Path=/")
        );
        assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        let r = send(signed_in(get_("/"))).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(r.headers()[header::REFERRER_POLICY], "no-referrer");
        assert!(CSP.contains("frame-ancestors 'none'"));
    }

    #[tokio::test]
    async fn no_token_or_a_wrong_one_is_401() {
        assert_eq!(send(get_("/")).await.status(), StatusCode::UNAUTHORIZED);
        let wrong = "f".repeat(32);
        assert_eq!(
            send(get_(&format!("/?token={wrong}"))).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let r = send(get_("/").header(header::COOKIE, format!("{}={wrong}", cookie_name(PORT)))).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        // Another port's cookie is not this studio's.
        let r = send(get_("/").header(header::COOKIE, format!("{}={TOKEN}", cookie_name(PORT + 1)))).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn only_loopback_names_with_the_port_are_answered() {
        for host in [format!("localhost:{PORT}"), format!("[::1]:{PORT}")] {
            let r = send(signed_in(Request::builder().uri("/").header(header::HOST, host))).await;
            assert_eq!(r.status(), StatusCode::OK);
        }
        for host in [
            "evil.example".to_owned(),
            format!("evil.example:{PORT}"),
            "127.0.0.1:80".to_owned(),
            String::new(),
        ] {
            let r = send(signed_in(
                Request::builder().uri("/").header(header::HOST, host.clone()),
            ))
            .await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{host}");
            assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        }
    }

    #[tokio::test]
    async fn a_remote_address_is_answered_only_when_given() {
        let lan = format!("192.168.1.10:{PORT}");
        let req = || {
            signed_in(Request::builder().uri("/").header(header::HOST, lan.clone()))
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(
            app().oneshot(req()).await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
        let remote = Router::new().route("/", get(|| async { "gallery" })).layer(
            axum::middleware::from_fn_with_state(Guard::new(PORT, TOKEN).also_answering(&lan), check),
        );
        assert_eq!(
            remote.clone().oneshot(req()).await.unwrap().status(),
            StatusCode::OK
        );
        let other = signed_in(
            Request::builder()
                .uri("/")
                .header(header::HOST, format!("10.0.0.1:{PORT}")),
        )
        .body(Body::empty())
        .unwrap();
        assert_eq!(
            remote.oneshot(other).await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn changes_need_the_pages_own_origin() {
        let post = || signed_in(get_("/").method(Method::POST));
        assert_eq!(send(post()).await.status(), StatusCode::FORBIDDEN, "no Origin");
        let r = send(post().header(header::ORIGIN, "http://evil.example")).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let own = format!("http://127.0.0.1:{PORT}");
        let r = send(
            post()
                .header(header::ORIGIN, &own)
                .header("sec-fetch-site", "cross-site"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = send(
            post()
                .header(header::ORIGIN, &own)
                .header("sec-fetch-site", "same-origin"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        // Without the cookie the Origin does not help.
        let r = send(get_("/").method(Method::POST).header(header::ORIGIN, &own)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn tokens_are_128_bits() {
        assert_eq!(random_token().unwrap().len(), 32);
    }
}
