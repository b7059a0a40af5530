//! What the approver sees is what the kernel compares: before the server opens a request for an
//! operation, it recomputes the operation's id from the fields it shows approvers (file
//! identity and arguments, or destination) and the rule number, and compares it with the id
//! the daemon sent. The daemon installs the binding it saw itself under that id
//! (docs/architecture.md, "Grant binding"), so a request whose id another operation produced
//! would have approvers read one command and grant another. Such a request is never opened.

use std::net::IpAddr;

use agent_common::binding::Binding;

use crate::pb;

/// Why an operation cannot become an approval request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unbound {
    #[error(
        "its arguments are longer than the kernel captures, so approving it would approve \
         bytes nobody read (make the command shorter: put the long part in a file)"
    )]
    Truncated,
    #[error("{0}")]
    Malformed(String),
    #[error(
        "its fingerprint is not the id of the operation it shows (file, arguments or \
         destination, and rule number): approvers would read one operation and grant another"
    )]
    Mismatch,
}

impl Unbound {
    /// The flag an uploaded event gets when its refusal could not open a request.
    pub fn flag(&self) -> &'static str {
        match self {
            Self::Truncated => "not_approvable_truncated",
            Self::Malformed(_) | Self::Mismatch => "not_approvable_unbound",
        }
    }
}

/// Checks that `op.fingerprint` is the id of the operation `op` shows.
pub fn verify(op: &pb::Operation) -> Result<(), Unbound> {
    let binding = match &op.destination {
        Some(d) => connect(op.rule_number, d)?,
        None => {
            if op.argv_truncated {
                return Err(Unbound::Truncated);
            }
            Binding::exec(op.rule_number, device(&op.device)?, op.inode, &op.argv)
                .stamped(op.write_stamp)
        }
    };
    if binding.id() == op.fingerprint {
        Ok(())
    } else {
        Err(Unbound::Mismatch)
    }
}

fn connect(rule: u32, d: &pb::Destination) -> Result<Binding, Unbound> {
    let addr: IpAddr = d.address.parse().map_err(|_| {
        Unbound::Malformed(format!(
            "destination.address {:?} is not an IP address",
            d.address
        ))
    })?;
    let port = u16::try_from(d.port)
        .map_err(|_| Unbound::Malformed(format!("destination.port {} is not a port", d.port)))?;
    let protocol = match d.protocol.as_str() {
        "tcp" => 6,
        "udp" => 17,
        other => other.parse::<u16>().map_err(|_| {
            Unbound::Malformed(format!(
                "destination.protocol {other:?} is neither tcp, udp nor a protocol number"
            ))
        })?,
    };
    Ok(Binding::connect(rule, addr, port, protocol))
}

/// The kernel's encoding of device `major:minor` (`MKDEV`: 12-bit major, 20-bit minor).
fn device(s: &str) -> Result<u64, Unbound> {
    let bad = || Unbound::Malformed(format!("device {s:?} is not major:minor"));
    let (major, minor) = s.split_once(':').ok_or_else(bad)?;
    let major: u64 = major.parse().map_err(|_| bad())?;
    let minor: u64 = minor.parse().map_err(|_| bad())?;
    if major >= 1 << 12 || minor >= 1 << 20 {
        return Err(bad());
    }
    Ok((major << 20) | minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(argv: &[&str]) -> pb::Operation {
        let mut op = pb::Operation {
            device: "259:3".into(),
            inode: 42,
            argv: argv.iter().map(|a| (*a).to_owned()).collect(),
            rule_number: 2,
            ..Default::default()
        };
        op.fingerprint = Binding::exec(2, (259 << 20) | 3, 42, argv).id();
        op
    }

    #[test]
    fn an_exec_whose_id_matches_what_it_shows_is_bound() {
        assert_eq!(verify(&exec(&["kubectl", "delete", "pod", "a"])), Ok(()));
        // argv[0] is not bound (the file identity is), and empty arguments count.
        let mut op = exec(&["kubectl", "delete", "", "a"]);
        op.argv[0] = "k".into();
        assert_eq!(verify(&op), Ok(()));
    }

    #[test]
    fn any_change_to_what_approvers_see_is_a_mismatch() {
        let good = exec(&["kubectl", "delete", "pod", "a"]);
        let changes: [fn(&mut pb::Operation); 5] = [
            |op| op.argv[3] = "b".into(),
            |op| op.argv.push(String::new()),
            |op| op.inode += 1,
            |op| op.device = "259:4".into(),
            |op| op.rule_number = 1,
        ];
        for change in changes {
            let mut op = good.clone();
            change(&mut op);
            assert_eq!(verify(&op), Err(Unbound::Mismatch), "{op:?}");
        }
    }

    #[test]
    fn a_truncated_exec_is_never_approvable() {
        let mut op = exec(&["kubectl", "apply", "-f", "x"]);
        op.argv_truncated = true;
        assert_eq!(verify(&op), Err(Unbound::Truncated));
        assert_eq!(
            Unbound::Truncated.flag(),
            "not_approvable_truncated",
            "the flag auditors search for"
        );
    }

    #[test]
    fn a_connect_is_bound_to_address_port_and_protocol() {
        let mut op = pb::Operation {
            destination: Some(pb::Destination {
                address: "10.0.0.5".into(),
                port: 5432,
                protocol: "tcp".into(),
                family: "ipv4".into(),
            }),
            rule_number: 7,
            ..Default::default()
        };
        let addr: IpAddr = "10.0.0.5".parse().expect("address");
        op.fingerprint = Binding::connect(7, addr, 5432, 6).id();
        assert_eq!(verify(&op), Ok(()));
        // The kernel sees IPv4 as IPv4-mapped IPv6: one operation either way.
        let mut mapped = op.clone();
        if let Some(d) = mapped.destination.as_mut() {
            d.address = "::ffff:10.0.0.5".into();
        }
        assert_eq!(verify(&mapped), Ok(()));
        let mut udp = op.clone();
        if let Some(d) = udp.destination.as_mut() {
            d.protocol = "udp".into();
        }
        assert_eq!(verify(&udp), Err(Unbound::Mismatch));
        let mut port = op.clone();
        if let Some(d) = port.destination.as_mut() {
            d.port = 70_000;
        }
        assert!(matches!(verify(&port), Err(Unbound::Malformed(_))));
    }

    #[test]
    fn malformed_devices_are_named() {
        for bad in ["", "8", "8:x", "4096:0", "8:1048576"] {
            let mut op = exec(&["rm"]);
            op.device = bad.into();
            assert_eq!(
                verify(&op),
                Err(Unbound::Malformed(format!(
                    "device {bad:?} is not major:minor"
                )))
            );
        }
    }
}
