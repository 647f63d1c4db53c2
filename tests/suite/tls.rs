//! The admission webhook over HTTPS on its own port, with a certificate rotated on disk while
//! the server runs: new connections get the new certificate without a restart.

use crate::support;

use std::path::Path;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use serde_json::json;
use tollgate::serve::{CertReloader, TlsOptions, client_verifier};

/// Writes a new self-signed certificate for localhost; returns its DER.
fn issue(dir: &Path) -> CertificateDer<'static> {
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("tls.key"), issued.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("tls.crt"), issued.cert.pem()).unwrap();
    issued.cert.der().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_serves_https_and_picks_up_a_rotated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = issue(dir.path());
    let certificates =
        CertReloader::new(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).unwrap();
    let tls = TlsOptions {
        listen: "127.0.0.1:0".into(),
        certificates,
        check_every: Duration::from_millis(100),
        clients: None,
    };
    let (urls, stop, server) = support::spawn_service(support::no_budgets(), Some(tls)).await;
    let webhook = urls.iter().find(|u| u.starts_with("https://")).unwrap();
    let port = support::address(webhook)
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let address = format!("127.0.0.1:{port}");

    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "e911857d-c318-11e8-bbad-025000000001", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "namespace": "team-c", "operation": "CREATE", "dryRun": true,
                    "object": {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c",
                               "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}})
    .to_string();
    let request = format!(
        "POST /admission/v1/validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{review}",
        review.len()
    );
    let (presented, response) = support::https(&address, &[&first], &request).await;
    assert_eq!(presented, first);
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response.contains("\"uid\":\"e911857d-c318-11e8-bbad-025000000001\""),
        "{response}"
    );
    assert!(response.contains("\"allowed\":true"), "{response}");

    // The HTTPS port is the webhook's (and the probes'): chargebacks and the Kyverno quota route
    // stay on the HTTP port, so the pods the NetworkPolicy lets reach :8443 read no money and
    // hold no budget.
    for (method, path) in [
        ("GET", "/api/v1/chargeback"),
        ("POST", "/api/v1/quota/check"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/openapi.json"),
    ] {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        let (_, response) = support::https(&address, &[&first], &request).await;
        assert!(response.starts_with("HTTP/1.1 404"), "{path}: {response}");
    }
    let readyz = "GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let (_, response) = support::https(&address, &[&first], readyz).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");

    // Rotate: new files on disk; the next connections are served the new certificate.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = issue(dir.path());
    assert_ne!(first, second);
    let mut rotated = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let healthz = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        let (presented, response) = support::https(&address, &[&first, &second], healthz).await;
        if presented == second {
            assert!(response.ends_with("ok\n"), "{response}");
            rotated = true;
            break;
        }
    }
    assert!(rotated, "the rotated certificate was never served");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// A CA, and a client certificate it signed (what the API server presents per its admission
/// configuration).
fn client_ca(dir: &Path) -> support::ClientIdentity {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    std::fs::write(dir.join("ca.crt"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["kube-apiserver".to_string()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    (vec![cert.der().clone()], key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_the_api_server_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = issue(dir.path());
    let apiserver = client_ca(dir.path());
    let tls = TlsOptions {
        listen: "127.0.0.1:0".into(),
        certificates: CertReloader::new(&dir.path().join("tls.crt"), &dir.path().join("tls.key"))
            .unwrap(),
        check_every: Duration::from_secs(10),
        clients: Some(client_verifier(&dir.path().join("ca.crt")).unwrap()),
    };
    let (urls, stop, service) = support::spawn_service(support::no_budgets(), Some(tls)).await;
    let webhook = urls.iter().find(|u| u.starts_with("https://")).unwrap();
    let address = format!(
        "127.0.0.1:{}",
        support::address(webhook).rsplit(':').next().unwrap()
    );
    let healthz = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let (_, response) = support::https_as(&address, &[&server], Some(apiserver), healthz).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    let (_, response) = support::https_as(&address, &[&server], None, healthz).await;
    assert_eq!(response, "", "a client without a certificate is refused");
    let stranger = client_ca(tempfile::tempdir().unwrap().path());
    let (_, response) = support::https_as(&address, &[&server], Some(stranger), healthz).await;
    assert_eq!(response, "", "a certificate of another CA is refused");
    stop.send(()).unwrap();
    service.await.unwrap().unwrap();

    std::fs::write(dir.path().join("empty.crt"), "").unwrap();
    let err = client_verifier(&dir.path().join("empty.crt"))
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .ends_with("empty.crt: holds no CA certificate"),
        "{err}"
    );
}

#[test]
fn unusable_certificate_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("tls.key"), "not a key").unwrap();
    let err =
        CertReloader::new(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).unwrap_err();
    assert!(
        err.to_string().ends_with("tls.crt: holds no certificate"),
        "{err}"
    );
    issue(dir.path());
    std::fs::write(dir.path().join("tls.key"), "not a key").unwrap();
    let err =
        CertReloader::new(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).unwrap_err();
    assert!(
        err.to_string().contains("tls.key: not a PEM private key"),
        "{err}"
    );
}
