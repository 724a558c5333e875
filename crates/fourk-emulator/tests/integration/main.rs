//! Integration tests: the emulator on 127.0.0.1:0, called over HTTP with reqwest, and every
//! JSON body and stream event checked against the vendored OpenAI OpenAPI schema. One
//! binary, several modules.

mod batch;
mod common;
mod edits;
mod errors;
mod faults;
mod generations;
mod hardening;
mod json_edits;
mod responses;
mod schema;
mod server;
mod streaming;
