//! hailo-clip: CLIP zero-shot image classification over HTTP, on a Hailo-10H NPU or the CPU.

mod cli;

fn main() -> anyhow::Result<()> {
    malloc::tune();
    cli::run()
}

/// glibc's malloc, tuned so that a burst of large requests (12 MP photos: multi-megabyte bodies
/// and base64 texts) does not leave the process hundreds of megabytes bigger. By default glibc
/// raises its mmap threshold to the size of any large block freed (up to 32 MiB), so after the
/// first such request every body is carved from the arenas, which grow under load and stay
/// grown. Chosen by measurement against glibc's defaults, mimalloc and jemalloc
/// (docs/benchmark.md, "12 MP camera JPEGs"): lowest peak and idle RSS, memory back within
/// seconds of a burst, no extra dependency.
mod malloc {
    /// Blocks above this go to mmap and back to the system on free (fixed: no dynamic raise).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    const MMAP_THRESHOLD: libc::c_int = 256 * 1024;
    /// The service's few threads hardly contend; more arenas only fragment more.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    const ARENA_MAX: libc::c_int = 2;
    /// Free memory held inside the arenas above which it is handed back (checked once a second).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    const TRIM_ABOVE: usize = 8 << 20;

    pub fn tune() {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: mallopt only sets allocator parameters; called before any other thread.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
                libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
            }
            // Small blocks freed after a burst sit in the arenas' free lists; malloc_trim returns
            // their pages. Cheap when there is nothing to do, so a once-a-second look suffices.
            let _ = std::thread::Builder::new()
                .name("malloc-trim".into())
                .spawn(|| loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    // SAFETY: both only walk glibc's own arenas under its locks.
                    unsafe {
                        if libc::mallinfo2().fordblks > TRIM_ABOVE {
                            libc::malloc_trim(0);
                        }
                    }
                });
        }
    }
}
