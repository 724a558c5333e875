//! Integration tests: the emulator on 127.0.0.1:0, called over HTTP with reqwest, and every
//! JSON body checked against the vendored OpenAI OpenAPI schema. One binary, several modules.

mod common;
mod errors;
mod generations;
mod schema;
mod server;
