//! The exact operations this daemon may be asked to grant, by operation id: the ones the
//! kernel refused pending approval and the ones agents asked about ahead. A grant order (from
//! the control plane or the admin `grant` command) names an operation by id only; the
//! daemon installs the binding it saw itself, never one it is told.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use crate::binding::Binding;

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
}

impl Bindings {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers `b`; returns its id.
    pub fn remember(&self, b: Binding) -> String {
        let id = b.id();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.by_id.insert(id.clone(), b).is_none() {
            inner.order.push_back(id.clone());
            while inner.order.len() > MAX_BINDINGS {
                if let Some(old) = inner.order.pop_front() {
                    inner.by_id.remove(&old);
                }
            }
        }
        id
    }

    /// The operation named `id`, when this daemon saw it.
    pub fn get(&self, id: &str) -> Option<Binding> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.by_id.get(id).cloned()
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
}
