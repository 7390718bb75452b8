//! Links the component with a 64 KiB stack instead of the toolchain's
//! 1 MiB: the plugin never recurses deeply, and every fresh instance
//! (one per event under `isolation = "event"`) pays for the pages of its
//! stack when they are touched or zeroed.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size=65536");
    }
}
