//! Certificates a test makes for itself (rcgen): a CA, a server certificate for
//! `localhost` and `127.0.0.1` signed by it, a client CA and a client certificate, all as
//! PEM files in a directory.

use std::path::{Path, PathBuf};

/// One certificate authority: its certificate and key.
pub struct Authority {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    /// The CA certificate as a PEM file.
    pub cert_file: PathBuf,
}

/// A certificate and its key as PEM files.
pub struct Issued {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Authority {
    /// A new self-signed CA named `name`, written to `dir/<name>-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Authority {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("NordIQ test CA {name}"));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().expect("a CA key");
        let cert = params.self_signed(&key).expect("a CA certificate");
        let cert_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&cert_file, cert.pem()).expect("write CA");
        Authority {
            cert,
            key,
            cert_file,
        }
    }

    fn issue(
        &self,
        dir: &Path,
        name: &str,
        sans: &[&str],
        purpose: rcgen::ExtendedKeyUsagePurpose,
    ) -> Issued {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(sans).expect("leaf params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name.to_string());
        params.extended_key_usages = vec![purpose];
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let key = rcgen::KeyPair::generate().expect("a leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("a leaf certificate");
        let issued = Issued {
            cert_file: dir.join(format!("{name}.pem")),
            key_file: dir.join(format!("{name}.key")),
        };
        std::fs::write(&issued.cert_file, cert.pem()).expect("write certificate");
        std::fs::write(&issued.key_file, key.serialize_pem()).expect("write key");
        issued
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    pub fn server(&self, dir: &Path, name: &str) -> Issued {
        self.issue(
            dir,
            name,
            &["localhost", "127.0.0.1"],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate (for mutual TLS).
    pub fn client(&self, dir: &Path, name: &str) -> Issued {
        self.issue(
            dir,
            name,
            &[name],
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        )
    }
}
