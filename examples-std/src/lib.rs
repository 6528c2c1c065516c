//! Nothing here: the example clients are in `examples/` (`cargo run
//! --example sub`, `pub`, `request`), written with `std::net` only.
