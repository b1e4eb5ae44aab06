//! Lifecycle stages. The stages, the allowed transitions and which of them happen
//! automatically are the configurable contract of [`crate::scoring`]
//! ([`crate::engagement`] applies it); a stage is stored by name.

/// The stage every lead starts in under the default contract.
pub const INITIAL: &str = "new";
