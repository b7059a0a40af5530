//! Network rules: refused TCP connects, UDP connects and UDP sends get EPERM in every mode;
//! CIDRs, IPv6, IPv4-mapped IPv6 and port ranges select what is refused. Listeners in the test
//! process show that allowed traffic arrives and refused traffic never leaves.

use tests::{
    events::Destination,
    net::{TcpServer, UdpServer},
    Outcome, TestBed,
};

use crate::{network_rule, testbed};

/// `cs-probe VERB PROTO ADDR PORT` inside the agent cgroup (VERB: connect or sendto).
fn net(t: &TestBed, verb: &str, proto: &str, addr: &str, port: u16) -> Outcome {
    t.probe(&[verb, proto, addr, &port.to_string()]).run()
}

/// `out` failed with EPERM and its event is `rule`'s refusal of a connect to `dest`.
fn assert_refused(t: &TestBed, out: &Outcome, rule: &str, dest: (&str, u16, &str, &str)) {
    out.assert_errno(libc::EPERM);
    let event = t.events().wait_for_pid("connect", out.pid);
    assert_eq!(
        (event.outcome.as_str(), event.action.as_str()),
        ("refused", "deny"),
        "{}",
        event.line
    );
    assert_eq!(event.rule.as_deref(), Some(rule), "rule of {}", event.line);
    let (address, port, protocol, family) = dest;
    let expected = Destination {
        address: address.into(),
        port,
        protocol: protocol.into(),
        family: family.into(),
    };
    assert_eq!(
        event.destination,
        Some(expected),
        "destination of {}",
        event.line
    );
}

#[test]
fn tcp_and_udp_to_a_refused_ipv4_cidr_get_eperm() {
    let mut t = testbed("net-ipv4");
    let (tcp_in, tcp_out) = (
        TcpServer::bind("127.0.2.7", 0),
        TcpServer::bind("127.0.3.7", 0),
    );
    let (udp_in, udp_out) = (
        UdpServer::bind("127.0.2.7", 0),
        UdpServer::bind("127.0.3.7", 0),
    );
    t.start_agent(&t.policy(&network_rule("lab-net", "{ cidr: [127.0.2.0/24] }", "deny")));

    let out = net(&t, "connect", "tcp", "127.0.2.7", tcp_in.port());
    assert_refused(
        &t,
        &out,
        "lab-net",
        ("127.0.2.7", tcp_in.port(), "tcp", "ipv4"),
    );
    tcp_in.assert_nothing_accepted();
    for verb in ["connect", "sendto"] {
        let out = net(&t, verb, "udp", "127.0.2.7", udp_in.port());
        assert_refused(
            &t,
            &out,
            "lab-net",
            ("127.0.2.7", udp_in.port(), "udp", "ipv4"),
        );
        udp_in.assert_nothing_received();
    }

    net(&t, "connect", "tcp", "127.0.3.7", tcp_out.port()).assert_ok();
    tcp_out.assert_accepted();
    for verb in ["connect", "sendto"] {
        net(&t, verb, "udp", "127.0.3.7", udp_out.port()).assert_ok();
        udp_out.assert_received();
    }
}

#[test]
fn tcp_and_udp_to_a_refused_ipv6_address_get_eperm() {
    let mut t = testbed("net-ipv6");
    let (tcp_in, udp_in) = (TcpServer::bind("::1", 0), UdpServer::bind("::1", 0));
    let tcp_out = TcpServer::bind("::1", 0);
    let network = format!(
        "{{ cidr: [\"::1/128\"], ports: [{}, {}] }}",
        tcp_in.port(),
        udp_in.port()
    );
    t.start_agent(&t.policy(&network_rule("loopback6", &network, "deny")));

    let out = net(&t, "connect", "tcp", "::1", tcp_in.port());
    assert_refused(&t, &out, "loopback6", ("::1", tcp_in.port(), "tcp", "ipv6"));
    tcp_in.assert_nothing_accepted();
    for verb in ["connect", "sendto"] {
        let out = net(&t, verb, "udp", "::1", udp_in.port());
        assert_refused(&t, &out, "loopback6", ("::1", udp_in.port(), "udp", "ipv6"));
        udp_in.assert_nothing_received();
    }

    net(&t, "connect", "tcp", "::1", tcp_out.port()).assert_ok();
    tcp_out.assert_accepted();
}

#[test]
fn ipv4_mapped_ipv6_destinations_are_caught_by_ipv4_rules() {
    let mut t = testbed("net-mapped");
    let (tcp_in, udp_in) = (
        TcpServer::bind("127.0.2.7", 0),
        UdpServer::bind("127.0.2.7", 0),
    );
    let tcp_out = TcpServer::bind("127.0.3.7", 0);
    t.start_agent(&t.policy(&network_rule("lab-net", "{ cidr: [127.0.2.0/24] }", "deny")));

    let mapped = "::ffff:127.0.2.7";
    let out = net(&t, "connect", "tcp", mapped, tcp_in.port());
    assert_refused(&t, &out, "lab-net", (mapped, tcp_in.port(), "tcp", "ipv6"));
    tcp_in.assert_nothing_accepted();
    // An IPv6 UDP socket sending to a mapped address goes through the kernel's IPv4 path
    // (udpv6_sendmsg hands it to udp_sendmsg), so the IPv4 hook judges it and the event says
    // so: the plain IPv4 destination.
    let out = net(&t, "sendto", "udp", mapped, udp_in.port());
    assert_refused(
        &t,
        &out,
        "lab-net",
        ("127.0.2.7", udp_in.port(), "udp", "ipv4"),
    );
    udp_in.assert_nothing_received();

    net(&t, "connect", "tcp", "::ffff:127.0.3.7", tcp_out.port()).assert_ok();
    tcp_out.assert_accepted();
}

#[test]
fn port_range_refuses_inside_and_allows_outside() {
    let mut t = testbed("net-ports");
    // Fixed ports, so an address of this run's own keeps concurrent runs from colliding.
    let ip = format!("127.0.4.{}", 1 + std::process::id() % 250);
    let servers = [19999, 20000, 20010, 20011].map(|port| TcpServer::bind(&ip, port));
    let udp = UdpServer::bind(&ip, 20005);
    let network = r#"{ ports: ["20000-20010"], protocol: tcp }"#;
    t.start_agent(&t.policy(&network_rule("port-range", network, "deny")));

    for server in &servers {
        let port = server.port();
        let out = net(&t, "connect", "tcp", &ip, port);
        if (20000..=20010).contains(&port) {
            assert_refused(&t, &out, "port-range", (&ip, port, "tcp", "ipv4"));
            server.assert_nothing_accepted();
        } else {
            out.assert_ok();
            server.assert_accepted();
        }
    }
    // The rule is for TCP only.
    net(&t, "sendto", "udp", &ip, 20005).assert_ok();
    udp.assert_received();
}
