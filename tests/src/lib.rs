//! Helpers shared by the integration tests.

pub mod origin;
pub mod walk;
