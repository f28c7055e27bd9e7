//! A pausable TCP proxy for partition tests: [`TcpProxy`].
//!
//! It listens on a free port of 127.0.0.1 and forwards every connection to an upstream
//! address, on plain threads (two per connection). [`TcpProxy::pause`] holds the traffic of
//! every connection in both directions: bytes already read stay in the proxy, nothing more
//! is written either way, and the sockets stay open, so to both ends it looks like a network
//! that went silent (the kernel still acknowledges what arrives, so neither end's TCP
//! timeouts fire). [`TcpProxy::resume`] releases what was held, in order. A pause is not a
//! disconnect: [`TcpProxy::sever`] is (it closes every connection).
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use cano_tests::tcp_proxy::TcpProxy;
//!
//! let upstream = TcpListener::bind("127.0.0.1:0")?;
//! let proxy = TcpProxy::start(upstream.local_addr()?)?;
//! let mut client = TcpStream::connect(proxy.addr())?;
//! let (mut server, _) = upstream.accept()?;
//! client.write_all(b"ping")?;
//! let mut got = [0u8; 4];
//! server.read_exact(&mut got)?;
//! assert_eq!(&got, b"ping");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// What the proxy's threads share.
#[derive(Debug, Default)]
struct Shared {
    /// Whether traffic is held.
    paused: Mutex<bool>,
    released: Condvar,
    closing: AtomicBool,
    /// Both halves of every live connection, to close them on `sever` or drop.
    streams: Mutex<Vec<TcpStream>>,
}

impl Shared {
    /// Blocks while traffic is held; `false` once the proxy is closing.
    fn wait_released(&self) -> bool {
        let mut paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        while *paused && !self.closing.load(Ordering::SeqCst) {
            paused = self
                .released
                .wait(paused)
                .unwrap_or_else(|e| e.into_inner());
        }
        !self.closing.load(Ordering::SeqCst)
    }

    fn close_all(&self) {
        let streams = std::mem::take(&mut *self.streams.lock().unwrap_or_else(|e| e.into_inner()));
        for stream in streams {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// A TCP proxy on 127.0.0.1 whose traffic can be held and released (see the
/// [module docs](self)). Dropping it closes the listener and every connection.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl TcpProxy {
    /// Starts a proxy to `upstream` on a free port of 127.0.0.1.
    ///
    /// # Errors
    ///
    /// When no port can be bound. A connection whose upstream cannot be reached is closed
    /// (the client sees it end), not reported here.
    pub fn start(upstream: SocketAddr) -> io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("tcp-proxy-accept".into())
                .spawn(move || accept_loop(listener, upstream, shared))?
        };
        Ok(TcpProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Holds all traffic, both ways, on every connection (new ones too) until
    /// [`resume`](Self::resume).
    pub fn pause(&self) {
        *self.shared.paused.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    /// Releases the held traffic, in order, and lets traffic flow again.
    pub fn resume(&self) {
        *self.shared.paused.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.shared.released.notify_all();
    }

    /// Whether traffic is held.
    pub fn is_paused(&self) -> bool {
        *self.shared.paused.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes every live connection (both ends see it end); new connections are still
    /// accepted.
    pub fn sever(&self) {
        self.shared.close_all();
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.released.notify_all();
        // Wakes the acceptor, which then sees `closing`.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.shared.close_all();
    }
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.closing.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect(upstream) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let halves = (
            client.try_clone(),
            server.try_clone(),
            server.try_clone(),
            client.try_clone(),
        );
        let (Ok(client_read), Ok(server_write), Ok(server_read), Ok(client_write)) = halves else {
            continue;
        };
        {
            let mut streams = shared.streams.lock().unwrap_or_else(|e| e.into_inner());
            streams.push(client);
            streams.push(server);
        }
        for (from, to, name) in [
            (client_read, server_write, "tcp-proxy-up"),
            (server_read, client_write, "tcp-proxy-down"),
        ] {
            let shared = Arc::clone(&shared);
            let _ = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || pump(from, to, &shared));
        }
    }
}

/// Copies `from` to `to`, holding each chunk while the proxy is paused.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !shared.wait_released() || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    // One side ended: end the other, so both ends see the connection close.
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Reads from `stream` until `want` bytes arrived or `wait` passed.
    fn read_within(stream: &mut TcpStream, want: usize, wait: Duration) -> Vec<u8> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while got.len() < want {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => panic!("read: {e}"),
            }
        }
        got
    }

    fn connected() -> (TcpProxy, TcpStream, TcpStream) {
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = TcpProxy::start(upstream.local_addr().unwrap()).unwrap();
        let client = TcpStream::connect(proxy.addr()).unwrap();
        let (server, _) = upstream.accept().unwrap();
        (proxy, client, server)
    }

    #[test]
    fn a_pause_holds_both_directions_and_a_resume_releases_in_order() {
        let (proxy, mut client, mut server) = connected();
        client.write_all(b"hello").unwrap();
        assert_eq!(
            read_within(&mut server, 5, Duration::from_secs(5)),
            b"hello"
        );
        server.write_all(b"back").unwrap();
        assert_eq!(read_within(&mut client, 4, Duration::from_secs(5)), b"back");

        proxy.pause();
        assert!(proxy.is_paused());
        client.write_all(b"one ").unwrap();
        client.write_all(b"two").unwrap();
        server.write_all(b"held").unwrap();
        // Nothing gets through while paused.
        assert!(read_within(&mut server, 1, Duration::from_millis(300)).is_empty());
        assert!(read_within(&mut client, 1, Duration::from_millis(100)).is_empty());

        proxy.resume();
        assert_eq!(
            read_within(&mut server, 7, Duration::from_secs(5)),
            b"one two",
            "held bytes arrive in order"
        );
        assert_eq!(read_within(&mut client, 4, Duration::from_secs(5)), b"held");
    }

    #[test]
    fn a_connection_opened_while_paused_is_held_too() {
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = TcpProxy::start(upstream.local_addr().unwrap()).unwrap();
        proxy.pause();
        let mut client = TcpStream::connect(proxy.addr()).unwrap();
        let (mut server, _) = upstream.accept().unwrap();
        client.write_all(b"x").unwrap();
        assert!(read_within(&mut server, 1, Duration::from_millis(200)).is_empty());
        proxy.resume();
        assert_eq!(read_within(&mut server, 1, Duration::from_secs(5)), b"x");
    }

    #[test]
    fn sever_and_drop_close_the_connections() {
        let (proxy, mut client, mut server) = connected();
        proxy.sever();
        // Both ends see the end of the stream (a read returns 0 or an error, never hangs).
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 8];
        assert!(matches!(client.read(&mut buf), Ok(0) | Err(_)));
        assert!(read_within(&mut server, 1, Duration::from_secs(5)).is_empty());

        let (proxy2, mut client2, _server2) = connected();
        drop(proxy2);
        client2
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert!(matches!(client2.read(&mut buf), Ok(0) | Err(_)));
        drop(proxy);
    }
}
