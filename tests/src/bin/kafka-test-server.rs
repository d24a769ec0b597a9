//! The real `kafka-server` command line, built inside this package so that end-to-end tests
//! can spawn it as a process (Cargo names only a package's own binaries to its tests).

fn main() -> std::process::ExitCode {
    kafka_server::cli::main()
}
