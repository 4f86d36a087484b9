//! TLS: the crypto provider every TLS user in the process shares, and certificate files.

use std::path::Path;

/// Installs ring as the process's rustls crypto provider (the Kubernetes client uses it too).
/// Idempotent: later calls, or a provider installed elsewhere first, are fine.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A PEM file that holds at least one certificate, as its bytes (Redis clients take PEM).
pub fn read_pem_certificates(path: &Path) -> Result<Vec<u8>, String> {
    let pem =
        std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(roots) if !roots.is_empty() => Ok(pem),
        Ok(_) => Err(format!("{}: holds no PEM certificate", path.display())),
        Err(err) => Err(format!("{}: not PEM certificates: {err}", path.display())),
    }
}

/// Every certificate in a PEM file, for trusting a private certificate authority.
pub fn root_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = read_pem_certificates(path)?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|err| format!("{}: not PEM certificates: {err}", path.display()))
}
