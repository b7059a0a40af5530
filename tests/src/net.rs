//! Loopback listeners in the test process (outside every agent cgroup), so a test can tell an
//! allowed connect that really arrived from a refused one that never left.

use std::{
    io::ErrorKind,
    net::{IpAddr, SocketAddr, TcpListener, UdpSocket},
    thread,
    time::{Duration, Instant},
};

/// How long an allowed connection or datagram may take to show up on loopback.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to watch for something that must not arrive.
const SILENCE: Duration = Duration::from_millis(200);

/// A TCP listener on a loopback address.
#[derive(Debug)]
pub struct TcpServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl TcpServer {
    /// Binds `ip:port` (port 0: any free port).
    pub fn bind(ip: &str, port: u16) -> Self {
        let addr = socket_addr(ip, port);
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| {
            panic!("cannot listen on tcp {addr} (loopback set up? port free?): {e}")
        });
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("set_nonblocking: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local_addr: {e}"));
        Self { listener, addr }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Panics unless a connection arrives (and takes it off the queue).
    pub fn assert_accepted(&self) {
        let deadline = Instant::now() + ARRIVAL_TIMEOUT;
        loop {
            match self.listener.accept() {
                Ok(_) => return,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("no connection arrived on tcp {}: {e}", self.addr),
            }
        }
    }

    /// Panics if a connection arrives.
    pub fn assert_nothing_accepted(&self) {
        thread::sleep(SILENCE);
        if let Ok((_, peer)) = self.listener.accept() {
            panic!(
                "a connection from {peer} arrived on tcp {}, yet it was refused",
                self.addr
            );
        }
    }
}

/// A UDP socket bound to a loopback address.
#[derive(Debug)]
pub struct UdpServer {
    socket: UdpSocket,
    addr: SocketAddr,
}

impl UdpServer {
    /// Binds `ip:port` (port 0: any free port).
    pub fn bind(ip: &str, port: u16) -> Self {
        let addr = socket_addr(ip, port);
        let socket = UdpSocket::bind(addr).unwrap_or_else(|e| {
            panic!("cannot bind udp {addr} (loopback set up? port free?): {e}")
        });
        let addr = socket
            .local_addr()
            .unwrap_or_else(|e| panic!("local_addr: {e}"));
        Self { socket, addr }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Panics unless a datagram arrives (and consumes it).
    pub fn assert_received(&self) {
        self.socket
            .set_read_timeout(Some(ARRIVAL_TIMEOUT))
            .unwrap_or_else(|e| panic!("timeout: {e}"));
        let mut buf = [0u8; 64];
        if let Err(e) = self.socket.recv_from(&mut buf) {
            panic!("no datagram arrived on udp {}: {e}", self.addr);
        }
    }

    /// Panics if a datagram arrives.
    pub fn assert_nothing_received(&self) {
        self.socket
            .set_read_timeout(Some(SILENCE))
            .unwrap_or_else(|e| panic!("timeout: {e}"));
        let mut buf = [0u8; 64];
        if let Ok((_, peer)) = self.socket.recv_from(&mut buf) {
            panic!(
                "a datagram from {peer} arrived on udp {}, yet it was refused",
                self.addr
            );
        }
    }
}

fn socket_addr(ip: &str, port: u16) -> SocketAddr {
    let ip: IpAddr = ip
        .parse()
        .unwrap_or_else(|e| panic!("bad test address {ip}: {e}"));
    SocketAddr::new(ip, port)
}
