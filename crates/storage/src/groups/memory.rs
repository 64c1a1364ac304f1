//! [`GroupStore`] in process memory, for unit tests of the layers above.

use async_trait::async_trait;
use std::collections::BTreeSet;
use std::sync::Arc;

use super::{
    GroupStore, NewGroup, SharedGroup, distinct_lookups, distinct_members, validate_group,
};
use crate::StoreError;
use crate::memory::MemoryDb;

/// One group as the in-memory state keeps it.
pub(crate) struct MemoryGroup {
    display_name: Option<String>,
    description: Option<String>,
    created_at: i64,
    /// The `BTreeSet` order is the byte order `groups` promises.
    members: BTreeSet<String>,
}

impl MemoryGroup {
    fn to_group(&self, name: &str) -> SharedGroup {
        SharedGroup {
            name: name.to_owned(),
            display_name: self.display_name.clone(),
            description: self.description.clone(),
            created_at: self.created_at,
            members: self.members.iter().cloned().collect(),
        }
    }
}

fn no_group(name: &str) -> StoreError {
    StoreError::NotFound(format!("group {name}"))
}

pub(crate) struct MemoryGroupStore {
    db: Arc<MemoryDb>,
}

impl MemoryGroupStore {
    pub(crate) fn new(db: Arc<MemoryDb>) -> MemoryGroupStore {
        MemoryGroupStore { db }
    }
}

#[async_trait]
impl GroupStore for MemoryGroupStore {
    async fn create_group(&self, group: &NewGroup) -> Result<(), StoreError> {
        validate_group(group)?;
        let mut state = self.db.lock();
        if state.shared_groups.contains_key(&group.name) {
            return Err(StoreError::AlreadyExists(format!("group {}", group.name)));
        }
        state.shared_groups.insert(
            group.name.clone(),
            MemoryGroup {
                display_name: group.display_name.clone(),
                description: group.description.clone(),
                created_at: group.created_at,
                members: BTreeSet::new(),
            },
        );
        Ok(())
    }

    async fn remove_group(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.db.lock().shared_groups.remove(name).is_some())
    }

    async fn add_members(&self, name: &str, members: &[String]) -> Result<Vec<String>, StoreError> {
        let members = distinct_members(members)?;
        let mut state = self.db.lock();
        let group = state
            .shared_groups
            .get_mut(name)
            .ok_or_else(|| no_group(name))?;
        Ok(members
            .into_iter()
            .filter(|m| group.members.insert(m.clone()))
            .collect())
    }

    async fn remove_members(
        &self,
        name: &str,
        members: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let members = distinct_lookups(members);
        let mut state = self.db.lock();
        let group = state
            .shared_groups
            .get_mut(name)
            .ok_or_else(|| no_group(name))?;
        Ok(members
            .into_iter()
            .filter(|m| group.members.remove(m))
            .collect())
    }

    async fn groups(&self) -> Result<Vec<SharedGroup>, StoreError> {
        Ok(self
            .db
            .lock()
            .shared_groups
            .iter()
            .map(|(name, g)| g.to_group(name))
            .collect())
    }

    async fn group(&self, name: &str) -> Result<Option<SharedGroup>, StoreError> {
        Ok(self
            .db
            .lock()
            .shared_groups
            .get(name)
            .map(|g| g.to_group(name)))
    }
}
