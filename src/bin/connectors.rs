//! `connectors`: the management CLI (connectors, sync jobs, indices) for users without
//! Kibana and for the ftest.
fn main() {
    eprintln!("connectors: not implemented yet");
    std::process::exit(2);
}
