//! The `mqtt-conformance` command line.

fn main() {
    println!("mqtt-conformance: under construction");
}
