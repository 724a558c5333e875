//! fourk-client against scripted loopback servers (and, at the end, the emulator). One test
//! binary, modules by topic.

mod edits;
mod emulator;
mod payload_log;
mod provider;
mod retry;
mod server;
mod stream;
