//! The real `kafka-server` command line, built inside this package so that end-to-end tests
//! can spawn it as a process (Cargo names only a package's own binaries to its tests).

#[global_allocator]
static ALLOCATOR: kafka_server::Allocator = kafka_server::Allocator;

fn main() -> std::process::ExitCode {
    kafka_server::cli::main()
}
