//! Mutual TLS end to end on loopback: only certificates from the configured CA get in, and
//! only host certificates may register. (Client certificates are optional at the handshake
//! since bearer tokens exist: a client without one gets `unauthenticated` from the server.)

use std::net::SocketAddr;
use std::path::Path;

use control_plane::certs::{self, DevCerts, PemPair};
use control_plane::server;
use countersign_api::pb::agent_service_client::AgentServiceClient;
use countersign_api::pb::{RegisterRequest, RegisterResponse};
use countersign_api::tls::{self, TlsFiles};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic::Code;

/// A running server (with its store in a temp dir); dropping it stops the server.
struct TestServer {
    addr: SocketAddr,
    _running: server::Running,
    _data: tempfile::TempDir,
}

async fn start(dev: &DevCerts) -> TestServer {
    let files = TlsFiles {
        ca: dev.ca.cert.clone(),
        cert: dev.server.cert.clone(),
        key: dev.server.key.clone(),
    };
    let data = tempfile::tempdir().expect("data dir");
    let mut config = server::Config::new(data.path(), "127.0.0.1:0".parse().expect("addr"));
    config.tls = Some(files);
    let running = server::start(config).await.expect("server starts");
    TestServer {
        addr: running.addr,
        _running: running,
        _data: data,
    }
}

fn client_files(ca: &Path, client: &PemPair) -> TlsFiles {
    TlsFiles {
        ca: ca.to_owned(),
        cert: client.cert.clone(),
        key: client.key.clone(),
    }
}

/// Registers over a fresh connection; any failure (handshake or status) is returned as a Status.
async fn register(
    server: &TestServer,
    config: ClientTlsConfig,
) -> Result<RegisterResponse, tonic::Status> {
    let endpoint = Endpoint::from_shared(format!("https://{}", server.addr))
        .expect("endpoint")
        .tls_config(config.domain_name("localhost"))
        .expect("client TLS config");
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connect: {e}")))?;
    let request = RegisterRequest {
        agent_version: "test".to_owned(),
        kernel: "6.1".to_owned(),
        ..Default::default()
    };
    AgentServiceClient::new(channel)
        .register(request)
        .await
        .map(tonic::Response::into_inner)
}

fn setup() -> (tempfile::TempDir, DevCerts) {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = certs::generate_dev(dir.path()).expect("dev certificates");
    (dir, dev)
}

#[tokio::test]
async fn host_certificate_registers() {
    let (_dir, dev) = setup();
    let server = start(&dev).await;
    let config = tls::client_config(&client_files(&dev.ca.cert, &dev.host)).expect("config");
    let response = register(&server, config).await.expect("register");
    assert_eq!(response.host, certs::DEV_HOST);
    assert!(response.server_time.is_some());
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let (_dir, dev) = setup();
    let server = start(&dev).await;
    let ca = std::fs::read(&dev.ca.cert).expect("ca");
    let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    let status = register(&server, config).await.expect_err("no client cert");
    eprintln!("refused as expected: {status:?}");
    assert_ne!(status.code(), Code::Ok);
    assert_ne!(status.code(), Code::PermissionDenied, "{status:?}");
}

#[tokio::test]
async fn certificate_from_rogue_ca_is_refused() {
    let (_dir, dev) = setup();
    let (_rogue_dir, rogue) = setup();
    let server = start(&dev).await;
    // Trusts the real server, but presents a host certificate signed by another CA.
    let config = tls::client_config(&client_files(&dev.ca.cert, &rogue.host)).expect("config");
    let status = register(&server, config).await.expect_err("rogue CA");
    eprintln!("refused as expected: {status:?}");
    assert_ne!(status.code(), Code::Ok);
    assert_ne!(status.code(), Code::PermissionDenied, "{status:?}");
}

#[tokio::test]
async fn person_certificate_cannot_register() {
    let (_dir, dev) = setup();
    let server = start(&dev).await;
    let config = tls::client_config(&client_files(&dev.ca.cert, &dev.person)).expect("config");
    let status = register(&server, config).await.expect_err("person");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("person 'dev-person'"),
        "{status:?}"
    );
}
