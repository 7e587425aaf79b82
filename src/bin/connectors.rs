//! `connectors`: the management CLI (connectors, sync jobs, indices) for users without
//! Kibana and for the ftest. See [`connectors::cli`].

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let code = connectors::cli::main_with(args, &mut out, &mut err).await;
    std::process::exit(code);
}
