//! The `reference-broker` binary.

fn main() {
    println!("reference-broker: under construction");
}
