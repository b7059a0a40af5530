//! Checks on an operation asked for ahead (`request`), before its binding is computed
//! ([`agent_common::binding::Binding`]): what no process could pass, and protocol names.

/// Why an operation cannot be asked for.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FingerprintError {
    #[error("argument {0} contains a NUL byte: no process can pass it")]
    Nul(usize),
    #[error("argv is empty: argv[0] is needed")]
    NoArgv,
    #[error("protocol {0:?} is not tcp or udp")]
    Protocol(String),
}

/// An argv a process could pass to exec.
pub fn check_argv(argv: &[String]) -> Result<(), FingerprintError> {
    if argv.is_empty() {
        return Err(FingerprintError::NoArgv);
    }
    if let Some(i) = argv.iter().position(|a| a.as_bytes().contains(&0)) {
        return Err(FingerprintError::Nul(i));
    }
    Ok(())
}

/// `IPPROTO_*` number of `tcp` or `udp`.
pub fn protocol_number(name: &str) -> Result<u16, FingerprintError> {
    match name {
        "tcp" => Ok(libc::IPPROTO_TCP as u16),
        "udp" => Ok(libc::IPPROTO_UDP as u16),
        other => Err(FingerprintError::Protocol(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_argv_and_protocols_are_refused() {
        let argv = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            check_argv(&argv(&["a", "b\0c"])),
            Err(FingerprintError::Nul(1))
        );
        assert_eq!(check_argv(&[]), Err(FingerprintError::NoArgv));
        assert_eq!(check_argv(&argv(&["a"])), Ok(()));
        assert_eq!(protocol_number("udp"), Ok(17));
        assert!(protocol_number("icmp").is_err());
    }
}
