//! Generates the gRPC server of `rkt api-service` from the shipped
//! `proto/v1alpha/api.proto` (needs `protoc`, installed by `make setup`).

fn main() {
    println!("cargo:rerun-if-changed=proto/v1alpha/api.proto");
    tonic_build::configure()
        .build_client(false)
        .compile_protos(&["proto/v1alpha/api.proto"], &["proto"])
        .expect(
            "compiling proto/v1alpha/api.proto (is protoc installed? `make setup` installs it)",
        );
}
