//! Rebuild when a migration changes: `sqlx::migrate!()` embeds `migrations/` at compile time, and cargo does
//! not otherwise know that a new or edited migration file is an input of this crate.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
