//! The clients check the certificates of the servers they call: a loopback server presenting a
//! self-signed certificate (`fixtures/tls`, for `localhost`) is refused by both kinds of client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lightspeed_adapters::http::{HttpConfig, build_client, install_crypto_provider};
use lightspeed_adapters::webhook_target::{TargetPolicy, pinned_client, vet};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const CERT: &[u8] = include_bytes!("../../../fixtures/tls/self_signed_cert.pem");
const KEY: &[u8] = include_bytes!("../../../fixtures/tls/self_signed_key.pem");

/// Serves TLS with the self-signed certificate on loopback, answering `200` to whoever completes
/// a handshake; returns its address.
async fn self_signed_server() -> SocketAddr {
    install_crypto_provider();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(CERT).expect("certificate")],
            PrivateKeyDer::from_pem_slice(KEY).expect("key"),
        )
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut stream) = acceptor.accept(socket).await {
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    let _ = stream.write_all(answer).await;
                }
            });
        }
    });
    address
}

/// Whether any error in `error`'s chain says the certificate was not trusted.
fn refused_for_its_certificate(error: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        if e.to_string().contains("invalid peer certificate") {
            return true;
        }
        source = e.source();
    }
    false
}

#[tokio::test]
async fn the_adapters_client_refuses_a_certificate_no_system_root_vouches_for() {
    let address = self_signed_server().await;
    let client = build_client(&HttpConfig::default()).expect("client");
    let url = format!("https://localhost:{}/", address.port());
    let error = client.get(&url).send().await.expect_err("refused");
    assert!(refused_for_its_certificate(&error), "{error:?}");
}

#[tokio::test]
async fn a_merchant_webhook_client_refuses_a_certificate_no_system_root_vouches_for() {
    let address = self_signed_server().await;
    let policy = TargetPolicy {
        allow_loopback_http: true,
    };
    let url = format!("https://localhost:{}/hooks", address.port());
    let target = vet(&url, policy)
        .await
        .expect("a loopback target is allowed");
    let client = pinned_client(&target, Duration::from_secs(5)).expect("client");
    let error = client.post(&url).send().await.expect_err("refused");
    assert!(refused_for_its_certificate(&error), "{error:?}");
}
