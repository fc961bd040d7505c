//! The `silverback` command: runs the gateway and manages a running instance.

mod cli;
mod node;

/// mimalloc: per-thread free lists suit the thread-per-core workers (measured faster than glibc
/// malloc on the proxy path).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cli::run());
}
