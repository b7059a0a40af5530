//! The exact operations this daemon may be asked to grant, by operation id: the ones the
//! kernel refused pending approval and the ones agents asked about ahead. A grant order (from
//! the control plane or the admin `grant` command) names an operation by id only; the
//! daemon installs the binding it saw itself, never one it is told. Kept in memory and in
//! the bindings file, so that an approval given across a daemon restart still finds them.

mod file;

use std::{
    collections::{HashMap, VecDeque},
    io,
    path::Path,
    sync::Mutex,
};

use agent_common::binding::Binding;

pub use file::BindingsFile;

/// Most operations remembered (the oldest is forgotten first). A grant order for a forgotten
/// operation fails with a clear error; the agent's retry raises it again.
const MAX_BINDINGS: usize = 16384;

#[derive(Default)]
pub struct Bindings {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Binding>,
    order: VecDeque<String>,
    file: Option<BindingsFile>,
}

impl Bindings {
    /// In memory only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Kept in the bindings file at `path` too, starting with what it holds.
    pub fn open(path: &Path) -> io::Result<Self> {
        let (file, found) = BindingsFile::open(path)?;
        let lines = file.lines();
        let bindings = Self::new();
        for b in found {
            bindings.remember(b);
        }
        let mut inner = bindings.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.file = Some(file);
        if lines > inner.order.len() {
            inner.compact();
        }
        drop(inner);
        Ok(bindings)
    }

    /// Remembers `b`; returns its id.
    pub fn remember(&self, b: Binding) -> String {
        let id = b.id();
        self.remember_as(id.clone(), b);
        id
    }

    /// Remembers `b` under `id`, already computed as `b.id()` (the event sink has it from
    /// the record it logged).
    pub fn remember_as(&self, id: String, b: Binding) {
        debug_assert_eq!(id, b.id());
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.by_id.contains_key(&id) {
            return;
        }
        if let Some(file) = inner.file.as_mut() {
            if let Err(e) = file.append(&b) {
                tracing::warn!(error = %e, "appending to the bindings file: an approval given across a restart may not find this operation");
            }
        }
        inner.by_id.insert(id.clone(), b);
        inner.order.push_back(id);
        while inner.order.len() > MAX_BINDINGS {
            if let Some(old) = inner.order.pop_front() {
                inner.by_id.remove(&old);
            }
        }
        if inner
            .file
            .as_ref()
            .is_some_and(|f| f.lines() > 2 * MAX_BINDINGS)
        {
            inner.compact();
        }
    }

    /// The operation named `id`, when this daemon saw it.
    pub fn get(&self, id: &str) -> Option<Binding> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.by_id.get(id).cloned()
    }
}

impl Inner {
    /// Rewrites the file with what is remembered, oldest first.
    fn compact(&mut self) {
        let Self { by_id, order, file } = self;
        if let Some(file) = file.as_mut() {
            if let Err(e) = file.rewrite(order.iter().filter_map(|id| by_id.get(id))) {
                tracing::warn!(error = %e, "rewriting the bindings file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_by_id_and_forgets_the_oldest() {
        let b = Bindings::new();
        let first = b.remember(Binding::exec(1, 2, 3, &["x", "a"]));
        assert_eq!(b.get(&first), Some(Binding::exec(1, 2, 3, &["x", "a"])));
        for i in 0..MAX_BINDINGS {
            b.remember(Binding::exec(1, 2, 3, &["x", &i.to_string()]));
        }
        assert_eq!(b.get(&first), None);
        assert!(b.get("0123").is_none());
    }

    #[test]
    fn a_restarted_daemon_finds_what_it_saw() {
        let dir = std::env::temp_dir().join(format!("cs-bindings-mod-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bindings.jsonl");
        let _ = std::fs::remove_file(&path);
        let before = Bindings::open(&path).expect("open");
        let exec = before.remember(Binding::exec(1, 2, 3, &["x", "a"]));
        let connect = before.remember(Binding::connect(4, "10.1.1.1".parse().expect("ip"), 80, 6));
        before.remember(Binding::exec(1, 2, 3, &["x", "a"]));
        drop(before);
        let after = Bindings::open(&path).expect("reopen");
        assert_eq!(after.get(&exec), Some(Binding::exec(1, 2, 3, &["x", "a"])));
        assert!(after.get(&connect).is_some());
        let lines = std::fs::read_to_string(&path)
            .expect("file")
            .lines()
            .count();
        assert_eq!(lines, 2, "remembered once each");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
