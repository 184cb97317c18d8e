// The migrations are compiled into the binary (`embed_migrations!` in src/db/mod.rs);
// without this, adding one would not rebuild the crate that embeds them.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
