//! Certificates for TLS tests: a private authority and a certificate it issued for 127.0.0.1.

use std::path::{Path, PathBuf};

/// A certificate for 127.0.0.1 issued by a fresh private authority, all as PEM.
pub struct TestCertificate {
    pub authority_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCertificate {
    pub fn for_loopback() -> Self {
        let authority_key = rcgen::KeyPair::generate().unwrap();
        let mut authority = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        authority.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let issuer = rcgen::Issuer::new(authority.clone(), authority_key);
        let authority_pem = authority.self_signed(issuer.key()).unwrap().pem();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        TestCertificate {
            authority_pem,
            cert_pem: leaf.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the certificate and its key to `tls.crt` and `tls.key` in `dir`, and returns
    /// their paths.
    pub fn write_pair(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}
