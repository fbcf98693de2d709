//! The profiles held for lookups by key, kept at the registry's newest versions.
//!
//! Data flow: the registry-refresh task → [`ProfileIndexes::refresh`] rebuilds the index of
//! each profile table whose version moved (off the request path; a table past the memory
//! budget is left to the scan) → a profile call asks [`ProfileIndexes::current`] for the
//! index of its table; it gets one only when the index holds the version a session opened
//! now would read, else it scans as before. Either way the caller's policy makes the answer
//! ([`gdx_lake::lookup`]).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use gdx_lake::TableRegistry;
use gdx_lake::lookup::{Built, KeyIndex};

/// The profile tables served from memory.
pub const PROFILE_TABLES: [&str; 2] = ["profiles.citizen", "profiles.enterprise"];

/// Indexes of the profile tables, swapped whole when one is rebuilt.
#[derive(Debug)]
pub struct ProfileIndexes {
    /// Bytes all indexes together may hold (0: none).
    budget: usize,
    held: ArcSwap<HashMap<String, Arc<KeyIndex>>>,
    /// Table → version found too large, so it is not read again until it changes.
    too_large: std::sync::Mutex<HashMap<String, u64>>,
}

impl ProfileIndexes {
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            held: ArcSwap::from_pointee(HashMap::new()),
            too_large: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The index of `table` if it holds the version `registry` reads now.
    pub fn current(&self, table: &str, registry: &TableRegistry) -> Option<Arc<KeyIndex>> {
        self.held
            .load()
            .get(table)
            .filter(|i| i.is_current(registry))
            .cloned()
    }

    /// Rebuilds the indexes whose table has a newer version. Errors name the table and
    /// the kind of failure only.
    pub async fn refresh(&self, registry: &TableRegistry) -> Result<(), String> {
        if self.budget == 0 {
            return Ok(());
        }
        let snapshot = registry.snapshot();
        for table in PROFILE_TABLES {
            let Some(version) = snapshot.version(table) else {
                continue;
            };
            if self.current(table, registry).is_some() {
                continue;
            }
            let skipped = self
                .too_large
                .lock()
                .map(|m| m.get(table) == Some(&version));
            if skipped.unwrap_or(false) {
                continue;
            }
            // What the other indexes hold is not this one's to use.
            let others: usize = self
                .held
                .load()
                .iter()
                .filter(|(t, _)| t.as_str() != table)
                .map(|(_, i)| i.bytes())
                .sum();
            let budget = self.budget.saturating_sub(others);
            let started = std::time::Instant::now();
            match KeyIndex::build(registry, table, budget)
                .await
                .map_err(|e| e.log_safe())?
            {
                Built::Index(index) => {
                    tracing::info!(
                        table,
                        version = index.version(),
                        subjects = index.len(),
                        mib = index.bytes() >> 20,
                        ms = started.elapsed().as_millis() as u64,
                        "profile lookups served from memory"
                    );
                    let mut next = HashMap::clone(&self.held.load());
                    next.insert(table.to_owned(), Arc::from(index));
                    self.held.store(Arc::new(next));
                }
                Built::TooLarge { budget } => {
                    tracing::warn!(
                        table,
                        version,
                        budget_mib = budget >> 20,
                        "profile table larger than the lookup memory budget: lookups scan it"
                    );
                    if let Ok(mut m) = self.too_large.lock() {
                        m.insert(table.to_owned(), version);
                    }
                    let mut next = HashMap::clone(&self.held.load());
                    next.remove(table);
                    self.held.store(Arc::new(next));
                }
                Built::NotKeyed => {}
            }
        }
        Ok(())
    }
}
