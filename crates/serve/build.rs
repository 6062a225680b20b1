//! Compiles the KServe v2 / Triton gRPC protocol with `protox` (pure Rust, no system `protoc`);
//! raw tensor contents are `bytes::Bytes` (zero-copy).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/grpc_service.proto", "proto/model_config.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Tensor contents as `bytes::Bytes`: decoding slices them out of the received message
        // instead of copying each into a Vec, and responses hand their buffers over as they are.
        .bytes(".inference.ModelInferRequest.raw_input_contents")
        .bytes(".inference.ModelInferResponse.raw_output_contents")
        .compile_fds(fds)?;
    Ok(())
}
