//! The event log as the upload's spool: the sequence number of an event is its 1-based line
//! number in `STATE_DIR/events.jsonl`, and a position in the spool is (sequence of the last
//! line read, byte offset just after it). Only complete lines (ending in `\n`) are read: the
//! sink may be half-way through writing the last one.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Seek, SeekFrom},
    path::Path,
};

/// A position: `seq` lines lie before byte `offset`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub seq: u64,
    pub offset: u64,
}

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub seq: u64,
    /// Offset just after the line (its `\n` included).
    pub end: u64,
    /// Without the `\n`.
    pub text: Vec<u8>,
}

/// Opens the log at `offset`; None when it does not exist yet.
fn open_at(path: &Path, offset: u64) -> io::Result<Option<BufReader<File>>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    f.seek(SeekFrom::Start(offset))?;
    Ok(Some(BufReader::with_capacity(64 * 1024, f)))
}

/// Reads the next complete line; None at the end (or before an unfinished line).
fn next_line(r: &mut BufReader<File>, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    buf.clear();
    let n = r.read_until(b'\n', buf)?;
    if n == 0 || buf.last() != Some(&b'\n') {
        return Ok(None);
    }
    buf.pop();
    Ok(Some(n))
}

/// The lines after `from`, at most `max_lines` of them and about `max_bytes` (at least one
/// line when there is one).
pub fn read_after(
    path: &Path,
    from: Position,
    max_lines: usize,
    max_bytes: usize,
) -> io::Result<Vec<Line>> {
    let Some(mut r) = open_at(path, from.offset)? else {
        return Ok(Vec::new());
    };
    let mut lines = Vec::new();
    let mut pos = from;
    let mut bytes = 0usize;
    let mut buf = Vec::new();
    while lines.len() < max_lines && (lines.is_empty() || bytes < max_bytes) {
        let Some(n) = next_line(&mut r, &mut buf)? else {
            break;
        };
        pos.seq += 1;
        pos.offset += n as u64;
        bytes += n;
        lines.push(Line {
            seq: pos.seq,
            end: pos.offset,
            text: std::mem::take(&mut buf),
        });
    }
    Ok(lines)
}

/// Moves forward from `from` to just after line `target` (or to the last complete line when
/// the log is shorter: the returned position says where it stopped).
pub fn seek(path: &Path, from: Position, target: u64) -> io::Result<Position> {
    let mut pos = from;
    if pos.seq >= target {
        return Ok(pos);
    }
    let Some(mut r) = open_at(path, from.offset)? else {
        return Ok(pos);
    };
    let mut buf = Vec::new();
    while pos.seq < target {
        let Some(n) = next_line(&mut r, &mut buf)? else {
            break;
        };
        pos.seq += 1;
        pos.offset += n as u64;
    }
    Ok(pos)
}

/// Complete lines after byte `offset` (events not acknowledged yet, for `status`).
pub fn count_after(path: &Path, offset: u64) -> io::Result<u64> {
    let Some(mut r) = open_at(path, offset)? else {
        return Ok(0);
    };
    let mut count = 0;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(count);
        }
        count += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        let n = chunk.len();
        r.consume(n);
    }
}

/// Size of the log (0 when missing): a log shorter than a saved offset was truncated or
/// replaced.
pub fn len(path: &Path) -> io::Result<u64> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn log(name: &str, content: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("cs-spool-{}-{name}", std::process::id()));
        std::fs::write(&p, content).expect("write");
        p
    }

    #[test]
    fn lines_are_numbered_from_one_and_partial_lines_wait() {
        let p = log("numbers", b"a\nbb\nccc\ndd");
        let lines = read_after(&p, Position::default(), 10, 1 << 20).expect("read");
        let seqs: Vec<_> = lines
            .iter()
            .map(|l| (l.seq, l.end, l.text.clone()))
            .collect();
        assert_eq!(
            seqs,
            [
                (1, 2, b"a".to_vec()),
                (2, 5, b"bb".to_vec()),
                (3, 9, b"ccc".to_vec())
            ]
        );
        let after = Position { seq: 3, offset: 9 };
        assert!(read_after(&p, after, 10, 1 << 20).expect("read").is_empty());
        // The sink finishes the line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .and_then(|mut f| f.write_all(b"d\n"))
            .expect("append");
        let more = read_after(&p, after, 10, 1 << 20).expect("read");
        assert_eq!(
            (more[0].seq, more[0].text.as_slice()),
            (4, b"ddd".as_slice())
        );
        assert_eq!(count_after(&p, 0).expect("count"), 4);
        assert_eq!(count_after(&p, 9).expect("count"), 1);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn batches_are_bounded() {
        let p = log("bounded", b"1\n2\n3\n4\n5\n");
        assert_eq!(
            read_after(&p, Position::default(), 2, 1 << 20)
                .expect("read")
                .len(),
            2
        );
        // At least one line even when it alone exceeds the byte budget.
        assert_eq!(
            read_after(&p, Position::default(), 10, 1)
                .expect("read")
                .len(),
            1
        );
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn seeking_finds_line_ends() {
        let p = log("seek", b"a\nbb\nccc\n");
        assert_eq!(
            seek(&p, Position::default(), 2).expect("seek"),
            Position { seq: 2, offset: 5 }
        );
        // From a saved position, and past the end.
        let from = Position { seq: 1, offset: 2 };
        assert_eq!(
            seek(&p, from, 9).expect("seek"),
            Position { seq: 3, offset: 9 }
        );
        assert_eq!(seek(&p, from, 0).expect("seek"), from);
        let missing = std::env::temp_dir().join("cs-spool-missing-log");
        assert_eq!(
            seek(&missing, Position::default(), 5).expect("seek"),
            Position::default()
        );
        assert_eq!(count_after(&missing, 0).expect("count"), 0);
        let _ = std::fs::remove_file(&p);
    }
}
