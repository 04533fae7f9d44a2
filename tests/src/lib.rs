//! Helpers shared by the integration tests.

pub mod browser;
pub mod components;
pub mod hits;
pub mod mesh;
pub mod node;
pub mod origin;
pub mod proxy;
pub mod stand_in;
pub mod walk;
pub mod wan;
pub mod worlds;
pub mod xml;
pub mod youtube;
