//! Network faults between nodes, by a TCP proxy on every directed peer link.
//!
//! Node `i` reaches node `j` only through the proxy port `port(i, j)` (its `--peer`
//! address for `j` names that port), which forwards to `j`'s real listener. A connection
//! accepted on `port(i, j)` carries `i → j` bytes from client to server and `j → i` bytes
//! back, so every byte's direction is known whichever side dialled. [`Rules`] then say,
//! per direction, whether bytes pass, are dropped, or are held back for a delay:
//!
//! - a partition (minority, majority, a bridge) blocks both directions between groups:
//!   existing connections are cut and new ones refused, as a pulled cable;
//! - a one-way fault drops one direction's bytes and passes the other; the connection
//!   is cut when the fault heals (its byte stream has a hole that the encrypted transport
//!   refuses), as a real one-way loss ends a TCP session;
//! - latency delays each chunk of one direction by a fixed time, order preserved.
//!
//! Why a proxy and not network namespaces with `tc netem`: it needs neither root nor
//! kernel modules that containers often lack, it runs the same on a laptop and in CI,
//! and it tells the direction of each byte even when both peers dial each other, which
//! one-way faults need. What it does not model: packet-level loss and reordering inside
//! one TCP stream (TCP hides those from the node anyway) and faults on the HTTP API
//! (clients talk to nodes directly).
//!
//! Every buffer is bounded: a direction holds at most [`QUEUE_CHUNKS`] chunks of at most
//! 64 KiB; a full queue stops reading, which pushes back on the sender through TCP.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Chunks one direction of one connection may hold while they wait for their delay.
pub const QUEUE_CHUNKS: usize = 64;

/// How each direction between two nodes behaves. The default passes everything at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// `(from, to)`: bytes from `from` to `to` are dropped.
    pub blocked: BTreeSet<(usize, usize)>,
    /// `(from, to)`: bytes from `from` to `to` arrive this much later.
    pub delay: BTreeMap<(usize, usize), Duration>,
}

impl Rules {
    /// No link between any two nodes of different groups, in either direction; nodes in
    /// no group keep all their links (a bridge between groups).
    pub fn partition(groups: &[Vec<usize>]) -> Rules {
        let mut rules = Rules::default();
        for (g, group) in groups.iter().enumerate() {
            for other in groups.iter().skip(g + 1) {
                for &a in group {
                    for &b in other {
                        rules.blocked.insert((a, b));
                        rules.blocked.insert((b, a));
                    }
                }
            }
        }
        rules
    }

    /// Bytes from `from` to each of `to` are dropped; the other way they pass.
    pub fn one_way(from: usize, to: &[usize]) -> Rules {
        Rules {
            blocked: to.iter().map(|&t| (from, t)).collect(),
            ..Rules::default()
        }
    }

    /// Every link between `a` and each of `others`, both ways, delayed by `by`.
    pub fn latency(a: usize, others: &[usize], by: Duration) -> Rules {
        Rules {
            delay: others
                .iter()
                .flat_map(|&o| [((a, o), by), ((o, a), by)])
                .collect(),
            ..Rules::default()
        }
    }

    fn cut(&self, a: usize, b: usize) -> bool {
        self.blocked.contains(&(a, b)) && self.blocked.contains(&(b, a))
    }

    fn touches(&self, a: usize, b: usize) -> bool {
        self.blocked.contains(&(a, b)) || self.blocked.contains(&(b, a))
    }
}

/// One proxied connection: the node that dialled (`from`), the node it reached (`to`).
struct Link {
    id: u64,
    from: usize,
    to: usize,
    client: TcpStream,
    server: TcpStream,
    /// Bytes were dropped: the stream is broken and is cut when the fault heals.
    holed: Arc<AtomicBool>,
}

impl Link {
    fn cut(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}

struct Shared {
    rules: Mutex<Rules>,
    links: Mutex<Vec<Link>>,
    next_link: AtomicU64,
    stop: AtomicBool,
}

/// The proxies of a cluster of `n` nodes: `n × (n − 1)` listeners, one per directed link.
pub struct Net {
    shared: Arc<Shared>,
    ports: Vec<Vec<u16>>,
    threads: Vec<JoinHandle<()>>,
}

impl Net {
    /// Proxies for nodes listening for peers on `targets` (their real p2p ports), each on a
    /// port from `port` (below the ephemeral range).
    pub fn start(targets: &[u16], mut port: impl FnMut() -> u16) -> Net {
        let shared = Arc::new(Shared {
            rules: Mutex::new(Rules::default()),
            links: Mutex::new(Vec::new()),
            next_link: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let n = targets.len();
        let mut ports = vec![vec![0; n]; n];
        let mut threads = Vec::new();
        for (from, row) in ports.iter_mut().enumerate() {
            for to in (0..n).filter(|&to| to != from) {
                let listener = loop {
                    if let Ok(l) = TcpListener::bind(("127.0.0.1", port())) {
                        break l;
                    }
                };
                row[to] = listener.local_addr().unwrap().port();
                listener.set_nonblocking(true).unwrap();
                let (shared, target) = (shared.clone(), targets[to]);
                threads.push(std::thread::spawn(move || {
                    accept_loop(listener, from, to, target, shared)
                }));
            }
        }
        Net {
            shared,
            ports,
            threads,
        }
    }

    /// The port node `from` dials to reach node `to`.
    pub fn port(&self, from: usize, to: usize) -> u16 {
        self.ports[from][to]
    }

    /// Replaces the rules. Connections between nodes whose link the new rules block are
    /// cut at once (no message in flight slips through a fresh partition); connections
    /// whose stream lost bytes under the old rules are cut as they heal.
    pub fn set(&self, rules: Rules) {
        let mut current = self.shared.rules.lock().unwrap();
        let mut links = self.shared.links.lock().unwrap();
        links.retain(|link| {
            let newly_blocked = rules.touches(link.from, link.to)
                && !current.touches(link.from, link.to)
                || rules.cut(link.from, link.to);
            let broken = link.holed.load(Ordering::Relaxed) && !rules.touches(link.from, link.to);
            if newly_blocked || broken {
                link.cut();
                false
            } else {
                true
            }
        });
        *current = rules;
    }

    /// All links pass again.
    pub fn heal(&self) {
        self.set(Rules::default());
    }

    /// The rules in force.
    pub fn rules(&self) -> Rules {
        self.shared.rules.lock().unwrap().clone()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for link in self.shared.links.lock().unwrap().drain(..) {
            link.cut();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: TcpListener, from: usize, to: usize, target: u16, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::Relaxed) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(_) => continue,
        };
        if shared.rules.lock().unwrap().cut(from, to) {
            drop(client);
            continue;
        }
        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
            continue;
        };
        let _ = client.set_nonblocking(false);
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let holed = Arc::new(AtomicBool::new(false));
        let id = shared.next_link.fetch_add(1, Ordering::Relaxed);
        let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        shared.links.lock().unwrap().push(Link {
            id,
            from,
            to,
            client: c,
            server: s,
            holed: holed.clone(),
        });
        for (reader, writer, direction) in [
            (client.try_clone(), server.try_clone(), (from, to)),
            (server.try_clone(), client.try_clone(), (to, from)),
        ] {
            let (Ok(reader), Ok(writer)) = (reader, writer) else {
                continue;
            };
            let (shared, holed) = (shared.clone(), holed.clone());
            std::thread::spawn(move || pump(reader, writer, direction, id, holed, shared));
        }
    }
}

/// Moves one direction's bytes: reads, applies the rules, queues with the delay; a
/// second thread writes each chunk when its time comes.
fn pump(
    mut reader: TcpStream,
    writer: TcpStream,
    direction: (usize, usize),
    id: u64,
    holed: Arc<AtomicBool>,
    shared: Arc<Shared>,
) {
    let (queue, chunks) = sync_channel::<(Instant, Vec<u8>)>(QUEUE_CHUNKS);
    let stop = shared.clone();
    let write_thread = std::thread::spawn(move || deliver(writer, chunks, stop));
    let _ = reader.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buffer = vec![0u8; 64 << 10];
    while !shared.stop.load(Ordering::Relaxed) {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        let (blocked, delay) = {
            let rules = shared.rules.lock().unwrap();
            (
                rules.blocked.contains(&direction),
                rules.delay.get(&direction).copied().unwrap_or_default(),
            )
        };
        if blocked {
            holed.store(true, Ordering::Relaxed);
            continue;
        }
        if queue
            .send((Instant::now() + delay, buffer[..read].to_vec()))
            .is_err()
        {
            break;
        }
    }
    drop(queue);
    let _ = reader.shutdown(Shutdown::Both);
    let _ = write_thread.join();
    shared.links.lock().unwrap().retain(|link| {
        if link.id == id {
            link.cut();
            false
        } else {
            true
        }
    });
}

fn deliver(mut writer: TcpStream, chunks: Receiver<(Instant, Vec<u8>)>, shared: Arc<Shared>) {
    loop {
        match chunks.recv_timeout(Duration::from_millis(200)) {
            Ok((at, bytes)) => {
                let now = Instant::now();
                if at > now {
                    std::thread::sleep(at - now);
                }
                if writer.write_all(&bytes).is_err() {
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) if !shared.stop.load(Ordering::Relaxed) => {}
            Err(_) => break,
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    fn ephemeral() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn roundtrip(port: u16) -> Option<Duration> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_millis(600))).ok()?;
        let started = Instant::now();
        s.write_all(b"ping").ok()?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).ok()?;
        (&buf == b"ping").then(|| started.elapsed())
    }

    #[test]
    fn rules_pass_cut_drop_one_way_and_delay() {
        // Node 1 is an echo server; node 0 reaches it through the proxy.
        let targets = [ephemeral(), echo_server()];
        let net = Net::start(&targets, ephemeral);
        let port = net.port(0, 1);
        assert!(roundtrip(port).is_some(), "an open link passes");

        net.set(Rules::partition(&[vec![0], vec![1]]));
        assert!(roundtrip(port).is_none(), "a partition refuses the link");

        // 0 → 1 passes but the echo back is dropped.
        net.set(Rules::one_way(1, &[0]));
        assert!(
            roundtrip(port).is_none(),
            "a one-way fault drops the answers"
        );

        net.set(Rules::latency(0, &[1], Duration::from_millis(150)));
        let took = roundtrip(port).expect("a slow link still passes");
        // Two directions, each delayed: at least the configured delay each way.
        assert!(took >= Duration::from_millis(300), "delayed by {took:?}");

        net.heal();
        assert!(roundtrip(port).is_some(), "a healed link passes");
    }

    #[test]
    fn a_partition_cuts_the_connections_already_open() {
        let targets = [ephemeral(), echo_server()];
        let net = Net::start(&targets, ephemeral);
        let mut s = TcpStream::connect(("127.0.0.1", net.port(0, 1))).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"a").unwrap();
        let mut buf = [0u8; 1];
        s.read_exact(&mut buf).unwrap();
        net.set(Rules::partition(&[vec![0], vec![1]]));
        // The open connection ends (EOF or reset) at once; it does not just go quiet
        // until the read times out.
        let mut rest = Vec::new();
        if let Err(e) = s.read_to_end(&mut rest) {
            assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "the connection was left open: {e}"
            );
        }
        assert!(rest.is_empty(), "nothing passes a partition");
    }
}
