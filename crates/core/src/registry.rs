//! Bound sessions by bare JID, sharded so that routing never takes a global lock.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use causerie_jid::{BareJid, FullJid};
use causerie_stanza::StreamError;

use crate::session::SessionHandle;

const SHARDS: usize = 64;

type Shard = RwLock<HashMap<BareJid, Vec<SessionHandle>>>;

/// The result of binding a resource.
#[derive(Debug)]
pub enum BindOutcome {
    Bound,
    /// The resource was in use; the older session is returned so that the caller closes it with
    /// `<conflict/>` (RFC 6120 §7.7.2.2, the "override" policy most servers use by default).
    Replaced(SessionHandle),
    /// The account already has the maximum number of sessions.
    TooManySessions,
}

pub struct Registry {
    shards: Box<[Shard]>,
    count: AtomicUsize,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    pub fn new() -> Self {
        Registry {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            count: AtomicUsize::new(0),
        }
    }

    fn shard(&self, bare: &BareJid) -> &Shard {
        let mut h = DefaultHasher::new();
        bare.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    /// Binds a session. `max_per_user` bounds the resources of one account.
    pub fn bind(&self, handle: SessionHandle, max_per_user: usize) -> BindOutcome {
        let bare = handle.jid().to_bare();
        let mut shard = self.shard(&bare).write().unwrap_or_else(|e| e.into_inner());
        let list = shard.entry(bare).or_default();
        if let Some(pos) = list.iter().position(|s| s.jid() == handle.jid()) {
            let old = std::mem::replace(&mut list[pos], handle);
            return BindOutcome::Replaced(old);
        }
        if list.len() >= max_per_user {
            return BindOutcome::TooManySessions;
        }
        list.push(handle);
        self.count.fetch_add(1, Ordering::Relaxed);
        BindOutcome::Bound
    }

    /// Removes a session, only if the entry is still that session (a replacing session keeps its place).
    pub fn unbind(&self, jid: &FullJid, id: u64) -> bool {
        let bare = jid.to_bare();
        let mut shard = self.shard(&bare).write().unwrap_or_else(|e| e.into_inner());
        let Some(list) = shard.get_mut(&bare) else {
            return false;
        };
        let Some(pos) = list.iter().position(|s| s.id() == id) else {
            return false;
        };
        list.swap_remove(pos);
        if list.is_empty() {
            shard.remove(&bare);
        }
        self.count.fetch_sub(1, Ordering::Relaxed);
        true
    }

    pub fn get(&self, jid: &FullJid) -> Option<SessionHandle> {
        let bare = jid.to_bare();
        let shard = self.shard(&bare).read().unwrap_or_else(|e| e.into_inner());
        shard.get(&bare)?.iter().find(|s| s.jid() == jid).cloned()
    }

    /// Runs `f` over the sessions of an account without copying the list.
    pub fn with_resources<R>(&self, bare: &BareJid, f: impl FnOnce(&[SessionHandle]) -> R) -> R {
        let shard = self.shard(bare).read().unwrap_or_else(|e| e.into_inner());
        f(shard.get(bare).map(Vec::as_slice).unwrap_or(&[]))
    }

    pub fn resources(&self, bare: &BareJid) -> Vec<SessionHandle> {
        self.with_resources(bare, <[SessionHandle]>::to_vec)
    }

    /// Closes every session of an account with `err` (the account was locked or removed, an
    /// administrator ended them) and returns their addresses, sorted.
    pub fn close_account(&self, bare: &BareJid, err: &StreamError) -> Vec<FullJid> {
        let sessions = self.resources(bare);
        let mut closed: Vec<FullJid> = sessions
            .iter()
            .map(|s| {
                s.close(err.clone());
                s.jid().clone()
            })
            .collect();
        closed.sort();
        closed
    }

    /// Every session (shutdown, announcements, admin listings).
    pub fn all(&self) -> Vec<SessionHandle> {
        let mut out = Vec::with_capacity(self.len());
        for shard in self.shards.iter() {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            out.extend(shard.values().flatten().cloned());
        }
        out
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(id: u64, jid: &str) -> SessionHandle {
        SessionHandle::new(id, FullJid::parse(jid).expect("jid"), None, 4).0
    }

    #[test]
    fn bind_replace_unbind() {
        let r = Registry::new();
        assert!(matches!(r.bind(handle(1, "a@x/r1"), 2), BindOutcome::Bound));
        assert!(matches!(r.bind(handle(2, "a@x/r2"), 2), BindOutcome::Bound));
        assert!(matches!(
            r.bind(handle(3, "a@x/r3"), 2),
            BindOutcome::TooManySessions
        ));
        match r.bind(handle(4, "a@x/r1"), 2) {
            BindOutcome::Replaced(old) => assert_eq!(old.id(), 1),
            other => panic!("unexpected {other:?}"),
        }
        // The replaced session's late unbind must not remove its successor.
        assert!(!r.unbind(&FullJid::parse("a@x/r1").expect("jid"), 1));
        assert_eq!(r.len(), 2);
        assert!(r.unbind(&FullJid::parse("a@x/r1").expect("jid"), 4));
        assert_eq!(r.resources(&BareJid::parse("a@x").expect("jid")).len(), 1);
        assert_eq!(r.all().len(), 1);
    }
}
