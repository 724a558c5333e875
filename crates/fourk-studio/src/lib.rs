//! `fourk studio`: the local review page for the draft -> approve -> final way of working,
//! served on loopback by the core library (issue 15; being built).
//!
//! - [`guard`]: what every request passes before a page sees it: the `Host` header
//!   (loopback names with the studio's port, against DNS rebinding), the token (exchanged on
//!   first visit for an HttpOnly, SameSite=Strict cookie named after the port, then a
//!   redirect that takes it out of the address bar), a same-origin check on requests that
//!   change state, and the security headers of every answer.

pub mod guard;
