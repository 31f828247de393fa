//! Compiles `gw502/v1/*.proto` with protox (pure Rust), so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "gw502/v1/edge.proto",
        "gw502/v1/report.proto",
        "gw502/v1/query.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Serialize lets `gw502-agent snapshot --json` print a report as is.
        .message_attribute(".gw502.v1", "#[derive(serde::Serialize)]")
        .compile_fds(descriptors)?;
    Ok(())
}
