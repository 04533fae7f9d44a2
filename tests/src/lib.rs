//! Helpers shared by the integration tests.

pub mod node;
pub mod origin;
pub mod walk;
