//! hailo-clip: CLIP zero-shot image classification over HTTP, on a Hailo-10H NPU or the CPU.

mod cli;

fn main() -> anyhow::Result<()> {
    cli::run()
}
