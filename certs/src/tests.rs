use super::*;

#[test]
fn generation_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = generate_dev(dir.path()).expect("first run");
    let ca = std::fs::read(&first.ca.cert).expect("ca");
    let host = std::fs::read(&first.host.cert).expect("host");
    let second = generate_dev(dir.path()).expect("second run");
    assert_eq!(first, second);
    assert_eq!(ca, std::fs::read(&second.ca.cert).expect("ca again"));
    assert_eq!(host, std::fs::read(&second.host.cert).expect("host again"));
}

#[test]
fn missing_client_is_signed_by_existing_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = generate_dev(dir.path()).expect("generate");
    std::fs::remove_file(&dev.person.cert).expect("remove person");
    let ca = std::fs::read(&dev.ca.cert).expect("ca");
    generate_dev(dir.path()).expect("regenerate");
    assert_eq!(ca, std::fs::read(&dev.ca.cert).expect("ca again"));
    let pem = std::fs::read_to_string(&dev.person.cert).expect("person");
    let identity = crate::identity::from_pem(&pem).expect("identity");
    assert_eq!(identity, PeerIdentity::new(Role::Person, DEV_PERSON));
}

#[test]
fn names_are_checked() {
    assert!(valid_name("web-01.prod"));
    assert!(!valid_name("Web"));
    assert!(!valid_name("-x"));
    assert!(!valid_name("a/b"));
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = PeerIdentity::new(Role::Host, "../x");
    assert!(matches!(
        issue_client(dir.path(), &bad),
        Err(CertError::InvalidName(_))
    ));
}

#[test]
fn server_certificate_names_localhost_and_loopback_addresses() {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use x509_parser::extensions::GeneralName;

    let dir = tempfile::tempdir().expect("tempdir");
    let dev = generate_dev(dir.path()).expect("generate");
    let pem = std::fs::read(&dev.server.cert).expect("server.pem");
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).expect("pem");
    let (_, cert) = x509_parser::parse_x509_certificate(&block.contents).expect("x509");
    let san = cert
        .subject_alternative_name()
        .expect("san extension")
        .expect("has a san");
    let names = &san.value.general_names;
    // Clients reach a development server as https://localhost:7443 or https://127.0.0.1:PORT.
    assert!(
        names.contains(&GeneralName::DNSName("localhost")),
        "{names:?}"
    );
    let v4 = Ipv4Addr::LOCALHOST.octets();
    let v6 = Ipv6Addr::LOCALHOST.octets();
    assert!(names.contains(&GeneralName::IPAddress(&v4)), "{names:?}");
    assert!(names.contains(&GeneralName::IPAddress(&v6)), "{names:?}");
}
