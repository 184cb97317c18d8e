// The migrations are compiled into the binary (`embed_migrations!` in src/db/mod.rs);
// without this, adding one would not rebuild the crate that embeds them.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    // The binary is position-independent (so its addresses are randomised), and each of
    // its pointers to itself needs a relocation at start-up: 1.2 MB of them, written out
    // one by one. Packed relative relocations (DT_RELR, glibc 2.36 and later) store them
    // as bitmaps in a few kilobytes, and the loader reads less of the file at start-up.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    // Identical functions folded into one: generic code instantiated for several types
    // often compiles to the same bytes. `safe` folds only functions whose address is never
    // taken, by the address-significance tables rustc writes (gcc's C objects have none,
    // so their functions stay apart). Only where rust-lld is the default linker: GNU ld
    // has no `--icf`.
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64")
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,--icf=safe");
    }
}
