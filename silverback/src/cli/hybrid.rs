//! `silverback hybrid gen_cert [CERT KEY]`: a certificate/key pair for a hybrid-mode cluster,
//! as Kong's `kong hybrid gen_cert` writes it (`./cluster.crt` and `./cluster.key` unless named,
//! ECDSA P-384, never overwriting a file).

use clap::Subcommand;
use std::path::PathBuf;

/// Kong's default validity: three years.
const DEFAULT_DAYS: u32 = 3 * 365;

#[derive(Subcommand, Debug)]
pub enum HybridCommand {
    /// Generate a certificate/key pair suitable for hybrid mode; written to ./cluster.crt and
    /// ./cluster.key unless both paths are given.
    #[command(name = "gen_cert", alias = "gen-cert")]
    GenCert {
        /// Certificate file, then key file.
        #[arg(num_args = 0..=2)]
        files: Vec<PathBuf>,
        /// Validity in days (default 1095, three years).
        #[arg(short = 'd', long = "days")]
        days: Option<u32>,
    },
}

pub fn run(command: HybridCommand) -> i32 {
    let HybridCommand::GenCert { files, days } = command;
    let (cert, key) = match files.as_slice() {
        [] => (
            PathBuf::from("./cluster.crt"),
            PathBuf::from("./cluster.key"),
        ),
        [c, k] => (c.clone(), k.clone()),
        _ => {
            eprintln!("Error: both cert and key path needs to be provided");
            return 1;
        }
    };
    use silverback_proxy::tls::certs::{absolute, gen_cluster_cert};
    let (cert, key) = (absolute(&cert), absolute(&key));
    match gen_cluster_cert(&cert, &key, days.unwrap_or(DEFAULT_DAYS)) {
        Ok(()) => {
            println!(
                "Successfully generated certificate/key pairs, they have been written to: '{}' and '{}'.",
                cert.display(),
                key.display()
            );
            0
        }
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}
