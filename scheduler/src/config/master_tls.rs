//! `master_scheme` and `master_ca_file`: how eremetic reaches masters over TLS.
//!
//! - `master_scheme` (`http` or `https`) is the scheme of masters whose address names none:
//!   the leaders a `zk://` election announces (their `MasterInfo` has no scheme) and the bare
//!   `host:port` form of `master`. A `master` with an explicit `http://` or `https://` keeps
//!   it; naming the other scheme in `master_scheme` is a contradiction and refused.
//! - `master_ca_file` is a PEM file of the CA certificates that sign the masters'
//!   certificates. When set, only these CAs are trusted for the master (as Mesos' own
//!   `LIBPROCESS_SSL_CA_FILE`); unset, the system's trust store is used. The file is read and
//!   every certificate in it checked when the configuration is loaded, so `--check-config`
//!   reports a missing, unreadable or invalid file.

use std::path::{Path, PathBuf};

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::RootCertStore;

use crate::mesos::master_url::Scheme;
use crate::mesos::MasterUrl;

/// The CA certificates of `master_ca_file`, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFile {
    /// The file.
    pub path: PathBuf,
    /// Its content: one or more PEM certificates.
    pub pem: Vec<u8>,
}

/// `http` or `https`.
pub(super) fn parse_scheme(text: &str) -> Result<Scheme, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "http" => Ok(Scheme::Http),
        "https" => Ok(Scheme::Https),
        _ => Err(format!("{text:?} is not a scheme: use http or https")),
    }
}

/// Reads `text` (a path) as a PEM file of CA certificates; the error says what is wrong with
/// the file.
pub(super) fn read_ca_file(text: &str) -> Result<CaFile, String> {
    let path = Path::new(text.trim());
    let pem = std::fs::read(path).map_err(|error| format!("cannot read {text:?}: {error}"))?;
    check_ca_pem(&pem).map_err(|why| format!("{text:?}: {why}"))?;
    Ok(CaFile {
        path: path.to_owned(),
        pem,
    })
}

/// At least one PEM certificate, each one usable as a trust anchor.
fn check_ca_pem(pem: &[u8]) -> Result<(), String> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("not a PEM file of certificates: {error}"))?;
    if certificates.is_empty() {
        return Err(
            "holds no PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)"
                .to_owned(),
        );
    }
    let mut store = RootCertStore::empty();
    for (index, certificate) in certificates.into_iter().enumerate() {
        store.add(certificate).map_err(|error| {
            format!(
                "certificate {} is not a valid X.509 certificate: {error}",
                index + 1
            )
        })?;
    }
    Ok(())
}

/// `master` with `master_scheme` applied: a bare `host:port` (`explicit` false) takes the
/// scheme; an explicit one must agree with it. ZooKeeper masters are returned as they are
/// (the scheme applies to the leaders they announce).
pub(super) fn apply_scheme(
    master: MasterUrl,
    explicit: bool,
    scheme: Option<Scheme>,
) -> Result<MasterUrl, String> {
    let (Some(scheme), MasterUrl::Http(mut http)) = (scheme, master.clone()) else {
        return Ok(master);
    };
    if !explicit {
        http.scheme = scheme;
        return Ok(MasterUrl::Http(http));
    }
    if http.scheme != scheme {
        return Err(format!(
            "is {} but master {} names {}: remove one of them, or make them agree",
            scheme.as_str(),
            http.base_url(),
            http.scheme.as_str()
        ));
    }
    Ok(MasterUrl::Http(http))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheme_is_http_or_https() {
        assert_eq!(parse_scheme("HTTPS"), Ok(Scheme::Https));
        assert_eq!(parse_scheme("http"), Ok(Scheme::Http));
        assert!(parse_scheme("zk").unwrap_err().contains("http or https"));
    }

    #[test]
    fn the_scheme_applies_to_bare_masters_and_must_agree_with_explicit_ones() {
        let bare = MasterUrl::parse("m1:5050").unwrap();
        match apply_scheme(bare, false, Some(Scheme::Https)) {
            Ok(MasterUrl::Http(http)) => assert_eq!(http.base_url(), "https://m1:5050"),
            other => panic!("{other:?}"),
        }
        let explicit = MasterUrl::parse("http://m1:5050").unwrap();
        let error = apply_scheme(explicit.clone(), true, Some(Scheme::Https)).unwrap_err();
        assert!(error.contains("http://m1:5050"), "{error}");
        assert_eq!(
            apply_scheme(explicit.clone(), true, Some(Scheme::Http)),
            Ok(explicit)
        );
        let zk = MasterUrl::parse("zk://zk1:2181/mesos").unwrap();
        assert_eq!(apply_scheme(zk.clone(), true, Some(Scheme::Https)), Ok(zk));
    }

    #[test]
    fn a_ca_file_must_hold_valid_certificates() {
        let empty = check_ca_pem(b"").unwrap_err();
        assert!(empty.contains("no PEM certificate"), "{empty}");
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let error = check_ca_pem(garbage).unwrap_err();
        assert!(
            error.contains("certificate 1 is not a valid X.509"),
            "{error}"
        );
        let missing = read_ca_file("/nonexistent/ca.pem").unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
    }
}
