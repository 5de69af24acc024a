//! Modal dialogs: the invalidation confirmation and the datasource editor.

pub mod configure;
pub mod invalidate;

/// What a dialog asks for after a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// Still open, nothing to do.
    Open,
    /// Closed without acting.
    Cancelled,
    /// Act on this.
    Confirmed(T),
}
