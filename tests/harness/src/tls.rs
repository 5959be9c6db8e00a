//! Certificates made at test time, for fake servers that speak TLS
//! ([`MasterSetup::tls`](crate::master::MasterSetup::tls)): a test CA ([`TestCa`]) and server
//! identities it signs ([`ServerIdentity`]), generated with `rcgen` so that no key or
//! certificate is checked in, and the rustls acceptor a server wraps its connections in.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::error::HarnessError;

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A server's certificate chain and private key, in PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    /// The server certificate followed by nothing else (the CA is the trust anchor).
    pub cert_chain_pem: String,
    /// The server's private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("cert_chain_pem", &self.cert_chain_pem)
            .field("key_pem", &"<private key>")
            .finish()
    }
}

fn generation_failed(what: &str, error: rcgen::Error) -> HarnessError {
    HarnessError::Tls {
        reason: format!("generating {what}: {error}"),
    }
}

impl TestCa {
    /// A new CA named `name` (its subject's common name).
    pub fn generate(name: &str) -> Result<TestCa, HarnessError> {
        let mut params =
            CertificateParams::new(Vec::new()).map_err(|e| generation_failed("the CA", e))?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(|e| generation_failed("the CA key", e))?;
        let issuer = CertifiedIssuer::self_signed(params, key)
            .map_err(|e| generation_failed("the CA", e))?;
        Ok(TestCa { issuer })
    }

    /// The CA's certificate in PEM: what a client must trust.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server identity for `names` (DNS names or IP addresses, in the subject alternative
    /// names), signed by this CA.
    pub fn server_identity(&self, names: &[&str]) -> Result<ServerIdentity, HarnessError> {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let params =
            CertificateParams::new(names).map_err(|e| generation_failed("the server's", e))?;
        let key = KeyPair::generate().map_err(|e| generation_failed("the server key", e))?;
        let certificate = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| generation_failed("the server certificate", e))?;
        Ok(ServerIdentity {
            cert_chain_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl ServerIdentity {
    /// The rustls acceptor serving this identity (HTTP/1.1).
    pub(crate) fn acceptor(&self) -> Result<TlsAcceptor, HarnessError> {
        let invalid = |what: &str, error: String| HarnessError::Tls {
            reason: format!("the server identity's {what}: {error}"),
        };
        let chain = CertificateDer::pem_slice_iter(self.cert_chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| invalid("certificate chain", error.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|error| invalid("private key", error.to_string()))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| invalid("protocol versions", error.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|error| invalid("certificate", error.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
