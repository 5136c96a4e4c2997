// Builds the C++ shim only with the `link` feature: a default build needs neither HailoRT
// headers nor the library.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "link")]
    link::build();
}

#[cfg(feature = "link")]
mod link {
    use std::path::PathBuf;

    fn dir_from_env(var: &str, fallback: &str) -> PathBuf {
        println!("cargo:rerun-if-env-changed={var}");
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(fallback))
    }

    pub fn build() {
        let include = dir_from_env("HAILORT_INCLUDE_DIR", "/usr/include");
        let lib = dir_from_env("HAILORT_LIB_DIR", "/usr/lib");
        if !include.join("hailo/infer_model.hpp").exists() {
            panic!(
                "hailort-sys: {}/hailo/infer_model.hpp not found. Install HailoRT 5.x headers \
                 (e.g. the h10-hailort package) or set HAILORT_INCLUDE_DIR to the directory that \
                 holds hailo/",
                include.display()
            );
        }
        println!("cargo:rerun-if-changed=shim/hrt_shim.cpp");
        println!("cargo:rerun-if-changed=shim/hrt_shim.h");
        cc::Build::new()
            .cpp(true)
            .std("c++17")
            .file("shim/hrt_shim.cpp")
            .include("shim")
            .include(&include)
            .warnings(true)
            .compile("hrt_shim");
        println!("cargo:rustc-link-search=native={}", lib.display());
        // Debian/RPi OS put libhailort.so under the multiarch directory.
        for sub in ["aarch64-linux-gnu", "x86_64-linux-gnu"] {
            let d = lib.join(sub);
            if d.is_dir() {
                println!("cargo:rustc-link-search=native={}", d.display());
            }
        }
        println!("cargo:rustc-link-lib=dylib=hailort");
    }
}
