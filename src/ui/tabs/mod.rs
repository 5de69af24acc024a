//! The window's tabs. Each file draws one; the [`Tab`] enum leaves room for
//! the Redis tools (key browser, server info) that come later.

pub mod dashboard;
pub mod details;
pub mod health;
pub mod warming;

use serde::{Deserialize, Serialize};

use crate::keys::DsId;

/// Something a tab asks of the window itself (not the backend): open a
/// dialog or another tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Ask to confirm invalidating this datasource.
    ConfirmInvalidate(DsId),
    /// Edit this datasource.
    Configure(DsId),
    /// Register a new datasource.
    AddDatasource,
    /// Show this datasource in the Details tab.
    ShowDetails(DsId),
}

/// Which tab is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Tab {
    /// Per-datasource cards with actions (Ctrl+1).
    #[default]
    Cache,
    /// Active, queued and past warm jobs (Ctrl+2).
    Warming,
    /// Trends, breakdown and jobs of one datasource (Ctrl+3).
    Details,
    /// The health check's issues and recommendations (Ctrl+4).
    Health,
}

impl Tab {
    /// Every tab, in tab-bar order (Ctrl+1 … Ctrl+N).
    pub const ALL: [Tab; 4] = [Tab::Cache, Tab::Warming, Tab::Details, Tab::Health];

    /// Tab-bar text.
    pub fn label(self) -> &'static str {
        match self {
            Tab::Cache => "Analytics Cache",
            Tab::Warming => "Warming",
            Tab::Details => "Details",
            Tab::Health => "Health",
        }
    }
}
