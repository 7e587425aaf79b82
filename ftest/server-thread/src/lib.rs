//! A test server on its own OS thread with its own multi-thread Tokio runtime: the handle the
//! Slack simulator and the ES shim share.
//!
//! Invariants:
//! - The server never runs on the caller's runtime, so a test that pauses its clock, blocks
//!   its (current-thread) runtime or is itself synchronous never stalls it.
//! - [`ServerThread::start`] returns once the server said it is ready (the listener is bound
//!   before the thread starts, so the address is known and connections queue meanwhile), or
//!   with the error that kept it from starting.
//! - Dropping the handle (or [`ServerThread::shutdown`]) signals the server and joins its
//!   thread; the runtime then gets `shutdown_timeout` for lingering tasks (keep-alive
//!   connections), so dropping a handle never hangs.

use anyhow::Context as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

/// How a server thread is started.
#[derive(Debug, Clone)]
pub struct Options {
    /// Thread name; worker threads are named `<name>-worker`. Also names the server in errors.
    pub name: String,
    /// Address to listen on; `127.0.0.1:0` picks a free port.
    pub listen: String,
    /// Runtime worker threads.
    pub workers: usize,
    /// How long the runtime's remaining tasks get once the server future has returned.
    pub shutdown_timeout: Duration,
}

/// Handed to the server future: the listener, the stop signal, and the readiness signal.
pub struct Serving {
    /// The bound listener, registered with the server's runtime.
    pub listener: tokio::net::TcpListener,
    /// Resolves when the handle asks the server to stop (or is dropped).
    pub stop: oneshot::Receiver<()>,
    /// Call [`Ready::ready`] once the server accepts work; until then `start` waits.
    pub ready: Ready,
}

/// The server's "I am up" signal. Dropped without [`Ready::ready`], `start` fails.
pub struct Ready(mpsc::Sender<anyhow::Result<()>>);

impl Ready {
    /// Lets [`ServerThread::start`] return.
    pub fn ready(self) {
        let _ = self.0.send(Ok(()));
    }
}

/// A running server thread. Dropping it stops the server.
pub struct ServerThread {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Binds `options.listen`, then runs `serve(serving)` on a new thread and runtime; returns
    /// once the server called [`Ready::ready`].
    pub fn start<F, Fut>(options: Options, serve: F) -> anyhow::Result<ServerThread>
    where
        F: FnOnce(Serving) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let name = options.name.clone();
        let listener = std::net::TcpListener::bind(&options.listen)
            .with_context(|| format!("{name}: cannot listen on {}", options.listen))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<()>>();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(options.workers.max(1))
                    .thread_name(format!("{}-worker", options.name))
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.into()));
                            return;
                        }
                    };
                    serve(Serving {
                        listener,
                        stop: stop_rx,
                        ready: Ready(ready_tx),
                    })
                    .await;
                });
                rt.shutdown_timeout(options.shutdown_timeout);
            })
            .with_context(|| format!("{name}: spawning the server thread"))?;
        ready_rx
            .recv()
            .with_context(|| format!("{name}: the server thread died during startup"))??;
        Ok(ServerThread {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.stop_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn options() -> Options {
        Options {
            name: "echo".into(),
            listen: "127.0.0.1:0".into(),
            workers: 1,
            shutdown_timeout: Duration::from_millis(50),
        }
    }

    /// Answers one line per connection until stopped.
    async fn hello(serving: Serving) {
        let Serving {
            listener,
            mut stop,
            ready,
        } = serving;
        ready.ready();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((mut stream, _)) = accepted {
                        use tokio::io::AsyncWriteExt;
                        let _ = stream.write_all(b"hello\n").await;
                    }
                }
                _ = &mut stop => return,
            }
        }
    }

    #[test]
    fn serves_from_its_own_thread_until_dropped() {
        let server = ServerThread::start(options(), hello).unwrap();
        let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
        let mut line = String::new();
        stream.read_to_string(&mut line).unwrap();
        assert_eq!(line, "hello\n");
        let addr = server.addr();
        drop(server);
        let refused = std::net::TcpStream::connect(addr)
            .and_then(|mut s| s.write_all(b"x").and_then(|_| s.read(&mut [0; 1])));
        assert!(matches!(refused, Err(_) | Ok(0)), "{refused:?}");
    }

    #[test]
    fn a_server_that_never_gets_ready_is_an_error() {
        let error = ServerThread::start(options(), |serving: Serving| async move {
            drop(serving.ready);
        })
        .err()
        .expect("start fails");
        assert!(error.to_string().contains("echo"), "{error:#}");
    }

    #[test]
    fn a_taken_port_is_an_error_naming_the_server() {
        let first = ServerThread::start(options(), hello).unwrap();
        let taken = Options {
            listen: first.addr().to_string(),
            ..options()
        };
        let error = ServerThread::start(taken, hello).err().expect("port taken");
        assert!(error.to_string().contains("cannot listen on"), "{error:#}");
    }
}
