//! The `fourk` binary end to end, as a user runs it, in one test program (one link of the
//! binary's dependencies instead of one per file). Every server is on 127.0.0.1.

mod common;

mod batch;
mod batch_api;
mod generate;
mod money;
mod outputs;
mod pipeline;
mod providers;
mod routes;
mod shell;
mod workflow;
