//! Placeholder: the load benchmark (see the README's Benchmarks section).
fn main() {}
