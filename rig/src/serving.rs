//! A loopback server's life, shared by the stand-ins and the fault proxy: bound to a free
//! port, serving either as a task of the current tokio runtime (it ends with that
//! runtime) or on a thread and runtime of its own (so it serves every `#[tokio::test]`'s
//! runtime and can live in a `static`), and stopped by a watch channel that makes it drop
//! every connection at once.

use std::future::Future;
use std::sync::Mutex;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A free loopback port, ready for tokio, and its `http://127.0.0.1:PORT` URL.
pub fn bind_loopback() -> anyhow::Result<(std::net::TcpListener, String)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((listener, url))
}

/// Accept connections on `listener` until `shutdown` changes, each served by a task of
/// `serve` (with the shutdown signal, to drop it at once).
pub async fn accept_until_shutdown<Fut>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    serve: impl Fn(TcpStream, watch::Receiver<bool>) -> Fut,
) where
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve(stream, shutdown.clone()));
                }
                // Out of file descriptors and the like: wait instead of spinning.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
        }
    }
}

/// A running server; it stops when dropped or [stopped](Serving::stop).
pub struct Serving {
    shutdown: watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Serving {
    /// Serve `listener` with `serve` as a task of the current runtime. Fails outside one.
    pub fn on_current_runtime<Fut>(
        listener: std::net::TcpListener,
        serve: impl FnOnce(TcpListener, watch::Receiver<bool>) -> Fut,
    ) -> anyhow::Result<Self>
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| anyhow::anyhow!("serving on the current runtime needs one"))?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let (shutdown, stopped) = watch::channel(false);
        runtime.spawn(serve(listener, stopped));
        Ok(Self {
            shutdown,
            thread: Mutex::new(None),
        })
    }

    /// Serve `listener` with `serve` on a thread named `name` with a runtime of its own.
    pub fn detached<Fut>(
        name: &str,
        listener: std::net::TcpListener,
        serve: impl FnOnce(TcpListener, watch::Receiver<bool>) -> Fut + Send + 'static,
    ) -> anyhow::Result<Self>
    where
        Fut: Future<Output = ()>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let (shutdown, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || runtime.block_on(serve(listener, stopped)))?;
        Ok(Self {
            shutdown,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stop accepting and drop every connection. Idempotent; also done on drop.
    pub fn stop(&self) {
        self.shutdown.send_replace(true);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        // Dropped on its own thread (a static torn down there): it cannot join itself.
        if let Some(thread) = thread
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop();
    }
}
