//! TLS: the crypto provider every TLS user in the process shares, and certificate files.

use std::path::Path;

/// Installs ring as the process's rustls crypto provider (the Kubernetes client uses it too).
/// Idempotent: later calls, or a provider installed elsewhere first, are fine.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A PEM file that holds at least one certificate, as its bytes (Redis clients take PEM).
pub fn read_pem_certificates(path: &Path) -> Result<Vec<u8>, String> {
    read_certificates(path).map(|(pem, _)| pem)
}

/// Every certificate in a PEM file, for trusting a private certificate authority.
pub fn root_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    read_certificates(path).map(|(_, roots)| roots)
}

/// A PEM file's bytes and its certificates; at least one.
fn read_certificates(path: &Path) -> Result<(Vec<u8>, Vec<reqwest::Certificate>), String> {
    let pem =
        std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|err| format!("{}: not PEM certificates: {err}", path.display()))?;
    if roots.is_empty() {
        return Err(format!("{}: holds no PEM certificate", path.display()));
    }
    Ok((pem, roots))
}
