//! Hostile input: every bad line is a clear error naming the line, never a panic.

use super::*;
use crate::verify::MAX_LINE;

fn verify_bytes(bytes: &[u8]) -> Result<Summary, VerifyError> {
    verify(bytes, &key().verifying_key())
}

#[test]
fn garbage_lines_are_errors_naming_the_line() {
    let good = lines(chain(10, 4).records());
    let valid = good[3].clone();
    let garbage: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"   ".to_vec(),
        b"not json".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"42".to_vec(),
        b"{}".to_vec(),
        b"\xff\xfe{\"seq\":3}".to_vec(),
        b"\0\0\0".to_vec(),
        "[".repeat(100_000).into_bytes(),
        valid.replacen("\"seq\":3", "\"seq\":\"3\"", 1).into_bytes(),
        valid.replacen("\"seq\":3", "\"seq\":-3", 1).into_bytes(),
        valid
            .replacen("\"seq\":3", "\"seq\":99999999999999999999999", 1)
            .into_bytes(),
        valid
            .replacen("\"kind\":\"", "\"kind\":\"teleport", 1)
            .into_bytes(),
        valid.replacen("{", "{\"extra\":1,", 1).into_bytes(),
        valid
            .replacen("\"subject\":{", "\"subject\":{\"extra\":1,", 1)
            .into_bytes(),
        valid.replacen("T14:", " 14:", 1).into_bytes(),
        valid.to_uppercase().into_bytes(),
        valid.as_bytes()[..valid.len() / 2].to_vec(),
        format!("{valid}{valid}").into_bytes(),
    ];
    for (i, bad) in garbage.iter().enumerate() {
        let mut text = Vec::new();
        for line in &good[..3] {
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        text.extend_from_slice(bad);
        text.push(b'\n');
        let err = verify_bytes(&text).expect_err(&format!("garbage #{i}"));
        assert_eq!(err.line(), Some(4), "garbage #{i}: {err}");
        assert!(err.to_string().starts_with("line 4"), "garbage #{i}: {err}");
    }
}

#[test]
fn oversized_and_empty_inputs() {
    let long = vec![b'x'; MAX_LINE + 1];
    assert!(matches!(
        verify_bytes(&long),
        Err(VerifyError::LineTooLong { line: 1, .. })
    ));
    assert!(matches!(verify_bytes(b""), Err(VerifyError::Empty)));
}

#[test]
fn random_bytes_and_bit_flips_never_panic() {
    // Deterministic xorshift: reproducible without a dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let len = (next() % 300) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = verify_bytes(&bytes);
    }
    // Every single-bit flip in a valid record is detected (or the line no longer parses).
    let good = lines(chain(3, 2).records());
    let target = good[1].as_bytes();
    for pos in 0..target.len() {
        for bit in [0x01u8, 0x20, 0x80] {
            let mut flipped = target.to_vec();
            flipped[pos] ^= bit;
            let text = [good[0].as_bytes(), b"\n", &flipped, b"\n"].concat();
            let err = verify_bytes(&text).expect_err(&format!("flip {bit:#x} at {pos}"));
            assert_eq!(err.line(), Some(2), "flip {bit:#x} at {pos}: {err}");
        }
    }
}
