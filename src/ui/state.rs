//! What the window remembers between runs (eframe storage; window size and
//! position are kept by eframe itself). Every field has a default, so an
//! older or newer saved state still loads.

use serde::{Deserialize, Serialize};

use super::tabs::Tab;
use crate::backend::TrendRange;
use crate::keys::DsId;

/// Storage key of [`Persisted`].
pub const STORAGE_KEY: &str = "cachedeck.view";

/// How the datasource cards are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SortKey {
    /// Worst health first (cold, stale, degraded, good, excellent), so what
    /// needs attention is on top.
    #[default]
    Health,
    /// Alphabetical.
    Name,
    /// Oldest (or never) warmed first.
    Age,
    /// Largest memory first.
    Memory,
}

impl SortKey {
    /// Every key, in the order the selector shows them.
    pub const ALL: [SortKey; 4] = [
        SortKey::Health,
        SortKey::Name,
        SortKey::Age,
        SortKey::Memory,
    ];

    /// Selector text.
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Health => "Health (worst first)",
            SortKey::Name => "Name",
            SortKey::Age => "Age (oldest first)",
            SortKey::Memory => "Memory (largest first)",
        }
    }
}

/// The view settings kept between runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Persisted {
    /// The tab open when the window closed.
    pub tab: Tab,
    /// Card order on the dashboard.
    pub sort: SortKey,
    /// Card filter text (name or #id).
    pub filter: String,
    /// The datasource the Details tab shows.
    pub details_ds: Option<DsId>,
    /// The Details tab's time window.
    pub range: TrendRange,
}
