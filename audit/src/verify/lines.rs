//! Reading an untrusted export line by line, with a bound on line length.

use std::io::{self, BufRead, Read};

/// Longest accepted line. The server takes records of at most 256 KiB (encoded), whose line
/// is at most six times as long when every byte needs escaping; a record stored before that
/// bound came through gRPC's 4 MiB message limit. The bound keeps a hostile file from making
/// the verifier allocate without limit.
pub const MAX_LINE: usize = 32 << 20;

/// One line read from an export.
pub enum Line {
    /// The line, without its `\n` (or `\r\n`).
    Text(Vec<u8>),
    /// The line exceeded [`MAX_LINE`]; reading stops there.
    TooLong,
    /// End of input.
    End,
}

/// Reads the next line into a fresh buffer.
pub fn next_line<R: BufRead>(reader: &mut R) -> io::Result<Line> {
    let mut buf = Vec::new();
    // +2: room for the line terminator of a line of exactly MAX_LINE bytes.
    let n = reader
        .by_ref()
        .take(MAX_LINE as u64 + 2)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(Line::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    if buf.len() > MAX_LINE {
        return Ok(Line::TooLong);
    }
    Ok(Line::Text(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_bounds() {
        let mut r = io::Cursor::new(b"a\r\nb\n\nc".to_vec());
        let mut got = Vec::new();
        while let Line::Text(t) = next_line(&mut r).expect("read") {
            got.push(String::from_utf8(t).expect("utf-8"));
        }
        assert_eq!(got, ["a", "b", "", "c"]);

        let mut long = io::Cursor::new(vec![b'x'; MAX_LINE + 10]);
        assert!(matches!(next_line(&mut long).expect("read"), Line::TooLong));
        let mut exact = io::Cursor::new([vec![b'x'; MAX_LINE], b"\r\n".to_vec()].concat());
        assert!(
            matches!(next_line(&mut exact).expect("read"), Line::Text(t) if t.len() == MAX_LINE)
        );
    }
}
