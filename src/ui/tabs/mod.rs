//! The window's tabs. Each file here draws one Analytics Cache tab; the
//! Redis tools' tabs live in `ui::tools`, Settings and Audit in `ui::admin`.

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
    /// Register the datasource of a cache found in Redis: the editor opens
    /// with this id.
    Register(DsId),
    /// Show this datasource in the Details tab.
    ShowDetails(DsId),
    /// Open the report Export dialog.
    ExportReport,
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
    /// Key browser, inspector, purge and TTL (Ctrl+5).
    Keys,
    /// Live server statistics (Ctrl+6).
    Server,
    /// Who did what, with filters and export (Ctrl+7).
    Audit,
    /// Connection profiles (Ctrl+8).
    Settings,
}

impl Tab {
    /// Every tab, in tab-bar order (Ctrl+1 … Ctrl+N).
    pub const ALL: [Tab; 8] = [
        Tab::Cache,
        Tab::Warming,
        Tab::Details,
        Tab::Health,
        Tab::Keys,
        Tab::Server,
        Tab::Audit,
        Tab::Settings,
    ];

    /// Tab-bar text.
    pub fn label(self) -> &'static str {
        match self {
            Tab::Cache => "Analytics Cache",
            Tab::Warming => "Warming",
            Tab::Details => "Details",
            Tab::Health => "Health",
            Tab::Keys => "Keys",
            Tab::Server => "Redis",
            Tab::Audit => "Audit",
            Tab::Settings => "Settings",
        }
    }
}
