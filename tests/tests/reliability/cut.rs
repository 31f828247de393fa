//! A network partition on loopback: a TCP relay in front of a collector
//! that the test can cut and heal, in one of two ways a firewall cuts:
//!
//! - [`Link::Drop`]: it forwards nothing. Connections in flight go silent
//!   (both sockets held open, no byte passes, as when the packets are
//!   dropped) and new ones are accepted and never answered;
//! - [`Link::Reject`]: connections in flight are closed and new ones are
//!   closed at once (a reject rule).
//!
//! Healed, held connections are closed (a client sees its dead connection
//! fail and dials again) and new ones are relayed.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The state of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Relayed.
    Up,
    /// Cut, packets dropped.
    Drop,
    /// Cut, connections refused.
    Reject,
}

/// A relay to one collector.
pub struct Relay {
    /// Where agents dial instead of the collector.
    pub addr: SocketAddr,
    cut: watch::Sender<Link>,
    task: JoinHandle<()>,
}

impl Relay {
    /// A relay on a free loopback port to `to`.
    pub async fn start(to: SocketAddr) -> std::io::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, rx) = watch::channel(Link::Up);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, to, rx.clone()));
            }
        });
        Ok(Relay { addr, cut, task })
    }

    /// Cuts or heals the link.
    pub fn set(&self, link: Link) {
        let _ = self.cut.send(link);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(mut client: TcpStream, to: SocketAddr, mut cut: watch::Receiver<Link>) {
    let mut upstream = None;
    let link = *cut.borrow();
    match link {
        Link::Reject => return,
        Link::Drop => {}
        Link::Up => {
            let Ok(mut up) = TcpStream::connect(to).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut up) => return,
                _ = cut.wait_for(|c| *c != Link::Up) => {}
            }
            if *cut.borrow() == Link::Reject {
                return;
            }
            upstream = Some(up);
        }
    }
    // Dropped: hold everything silent until the link heals, then close.
    let _ = cut.wait_for(|c| *c == Link::Up).await;
    drop(upstream);
}
