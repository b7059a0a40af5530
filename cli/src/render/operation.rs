//! The text of an operation: `kubectl delete deploy web` or `10.0.0.1:5432/tcp`.

use countersign_api::pb;

use countersign_api::display::{clean, shell_join};

/// `exec` or `connect`: a destination makes it a connect.
pub fn kind(op: &pb::Operation) -> &'static str {
    match &op.destination {
        Some(d) if !d.address.is_empty() => "connect",
        _ => "exec",
    }
}

/// The operation as a person reads it: the destination of a connect, else the full argv
/// shell-quoted (`…` when the kernel capture was cut), else the binary.
pub fn text(op: &pb::Operation) -> String {
    if let Some(d) = op.destination.as_ref().filter(|d| !d.address.is_empty()) {
        return destination(d);
    }
    if op.argv.is_empty() {
        return clean(&op.binary).into_owned();
    }
    let mut s = shell_join(&op.argv);
    if op.argv_truncated {
        s.push_str(" …");
    }
    s
}

/// `addr:port/proto`, IPv6 addresses in brackets.
pub fn destination(d: &pb::Destination) -> String {
    let address = clean(&d.address);
    let proto = if d.protocol.is_empty() {
        "tcp".into()
    } else {
        clean(&d.protocol)
    };
    if address.contains(':') {
        format!("[{address}]:{}/{proto}", d.port)
    } else {
        format!("{address}:{}/{proto}", d.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_and_connect() {
        let exec = pb::Operation {
            binary: "/usr/bin/kubectl".into(),
            argv: vec!["kubectl".into(), "delete".into(), "deploy web".into()],
            ..Default::default()
        };
        assert_eq!(text(&exec), "kubectl delete 'deploy web'");
        assert_eq!(kind(&exec), "exec");
        let cut = pb::Operation {
            argv_truncated: true,
            ..exec.clone()
        };
        assert_eq!(text(&cut), "kubectl delete 'deploy web' …");
        let bare = pb::Operation {
            binary: "/bin/x\x1b".into(),
            ..Default::default()
        };
        assert_eq!(text(&bare), r"/bin/x\x1b");
        let v4 = pb::Operation {
            destination: Some(pb::Destination {
                address: "10.0.0.1".into(),
                port: 5432,
                protocol: "tcp".into(),
                family: "ipv4".into(),
            }),
            ..Default::default()
        };
        assert_eq!(text(&v4), "10.0.0.1:5432/tcp");
        assert_eq!(kind(&v4), "connect");
        let v6 = pb::Operation {
            destination: Some(pb::Destination {
                address: "::ffff:10.0.0.1".into(),
                port: 53,
                protocol: "udp".into(),
                family: "ipv6".into(),
            }),
            ..Default::default()
        };
        assert_eq!(text(&v6), "[::ffff:10.0.0.1]:53/udp");
    }
}
