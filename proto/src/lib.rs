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

/// The largest report an agent builds (1 MiB; it cuts the largest lists,
/// counting what it cut) and so the largest a collector stores: a larger
/// report is refused with `INVALID_ARGUMENT` naming this limit.
pub const MAX_REPORT_BYTES: usize = MAX_MESSAGE_BYTES / 4;

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::v1::HostReport;

    /// A newer agent may send fields this collector does not know: they are
    /// skipped, and everything known still decodes.
    #[test]
    fn unknown_fields_are_tolerated() {
        let mut bytes = HostReport {
            host_id: "web1".into(),
            seq: 7,
            ..Default::default()
        }
        .encode_to_vec();
        // Field 900, wire type 2 (length-delimited), 3 bytes of payload.
        bytes.extend_from_slice(&[0xa2, 0x38, 3, b'n', b'e', b'w']);
        let decoded = HostReport::decode(bytes.as_slice()).expect("unknown field skipped");
        assert_eq!(decoded.host_id, "web1");
        assert_eq!(decoded.seq, 7);
    }
}
