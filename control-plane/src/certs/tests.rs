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
    let identity = crate::tls::identity::from_pem(&pem).expect("identity");
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
