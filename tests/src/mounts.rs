//! Where the kernel file systems the tests need are mounted, read from `/proc/self/mountinfo`
//! (cgroup v2 is at `/sys/fs/cgroup/unified` on the hybrid host and `/sys/fs/cgroup` in the VM).

use std::path::PathBuf;

/// Mount point of the first mount of file system type `fstype`, if any.
pub fn find(fstype: &str) -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_else(|e| panic!("cannot read /proc/self/mountinfo (is /proc mounted?): {e}"));
    info.lines().find_map(|line| {
        // "36 25 0:31 / /sys/fs/cgroup rw,… shared:9 - cgroup2 cgroup2 rw": the optional fields
        // end at " - ", after which comes the file system type.
        let (mount, fs) = line.split_once(" - ")?;
        let mount_point = mount.split(' ').nth(4)?;
        (fs.split(' ').next()? == fstype).then(|| PathBuf::from(unescape(mount_point)))
    })
}

/// Like [`find`], but a missing mount is a broken test set-up: panics saying what to mount.
pub fn require(fstype: &str, hint: &str) -> PathBuf {
    find(fstype).unwrap_or_else(|| panic!("no {fstype} file system is mounted: {hint}"))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescapes_octal() {
        assert_eq!(super::unescape(r"/a\040b\\c"), r"/a b\\c");
    }
}
