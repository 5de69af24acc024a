//! What the window remembers between runs (eframe storage; window size and
//! position are kept by eframe itself). Every field has a default, so an
//! older or newer saved state still loads.

use eframe::egui;
use serde::{Deserialize, Serialize};

use super::admin::AdminPersisted;
use super::tabs::Tab;
use super::tools::ToolsPersisted;
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

/// Light or dark: follow the system, or force one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ThemeChoice {
    /// Whatever the desktop says.
    #[default]
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

impl ThemeChoice {
    /// Every choice, in the order the selector shows them.
    pub const ALL: [ThemeChoice; 3] = [ThemeChoice::System, ThemeChoice::Light, ThemeChoice::Dark];

    /// Selector text.
    pub fn label(self) -> &'static str {
        match self {
            ThemeChoice::System => "System",
            ThemeChoice::Light => "Light",
            ThemeChoice::Dark => "Dark",
        }
    }

    /// The egui preference this stands for.
    pub fn preference(self) -> egui::ThemePreference {
        match self {
            ThemeChoice::System => egui::ThemePreference::System,
            ThemeChoice::Light => egui::ThemePreference::Light,
            ThemeChoice::Dark => egui::ThemePreference::Dark,
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
    /// Light, dark or the system's.
    pub theme: ThemeChoice,
    /// Key browser and Redis tab settings.
    pub tools: ToolsPersisted,
    /// Settings, Audit and Export settings.
    pub admin: AdminPersisted,
}
