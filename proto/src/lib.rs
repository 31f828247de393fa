//! The gw502 wire contract: protobuf package `gw502.v1`.
//!
//! `report.proto` is what agents send (the `Ingest` service), `query.proto` is
//! what gw502ctl reads (the `Query` service), and `edge.proto` holds the HTTP
//! probe observation both sides share. Unknown fields are skipped by prost, so
//! agents and collectors of adjacent versions interoperate.
#![allow(missing_docs)]

/// Messages and services of `gw502.v1`.
pub mod v1 {
    tonic::include_proto!("gw502.v1");
}

pub use v1::*;

/// The largest message either side accepts (4 MiB); larger ones are refused
/// with `OUT_OF_RANGE`/`RESOURCE_EXHAUSTED` and the server keeps serving.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
