//! hailo-clip: CLIP zero-shot image classification over HTTP, on a Hailo-10H NPU or the CPU.

pub mod api;
pub mod backend;
pub mod config;
pub mod doctor;
pub mod engine;
pub mod models;
pub mod server;
pub mod telemetry;
