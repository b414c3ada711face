//! Compiles `proto/evpn/v1/*.proto` with protox (pure Rust, no system `protoc`),
//! generates tonic clients/servers with prost, and proto-JSON serde impls with
//! pbjson (canonical camelCase field names, RFC 3339 timestamps).
use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "evpn/v1/types.proto",
        "evpn/v1/evpnd.proto",
        "evpn/v1/evpnr.proto",
    ];
    let mut compiler = protox::Compiler::new([&root])?;
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(files)?;

    let out = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor = compiler.encode_file_descriptor_set();
    fs::write(out.join("evpn_descriptor.bin"), &descriptor)?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(compiler.file_descriptor_set())?;

    pbjson_build::Builder::new()
        .register_descriptors(&descriptor)?
        .build(&[".evpn.v1"])?;

    for f in compiler.files() {
        if let Some(p) = f.path() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    Ok(())
}
