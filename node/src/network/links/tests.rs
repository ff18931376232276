use super::*;
use agora_consensus::raft::{Message, MessageBody};
use agora_core::{AccountId, Hash32};

fn node(n: u8) -> NodeId {
    AccountId(Hash32([n; 32]))
}

fn vote(from: NodeId, to: NodeId, term: u64) -> Message {
    Message {
        from,
        to,
        term,
        body: MessageBody::PreVoteResponse { granted: true },
        signature: Vec::new(),
    }
}

/// A Raft message reaches its zone's driver only from the peer that zone binds to its
/// sender, and a forward only from a validator's peer: another validator's peer claiming
/// a node, an outsider's forward, a frame for a zone this node does not serve, a full
/// driver queue and an oversized forward are each dropped and counted under their own
/// name, and only the last closes the link.
#[test]
fn a_frame_reaches_its_driver_only_from_a_peer_its_zone_allows() {
    let (zone, other_zone) = (Hash32([1; 32]), Hash32([2; 32]));
    let (a, b) = (PeerId::random(), PeerId::random());
    let (inbound, mut driver) = mpsc::channel(1);
    let routes = Routes::default();
    routes.write().insert(
        zone,
        Route {
            validators: [(node(1), a), (node(2), b)].into(),
            inbound,
        },
    );
    let counters = NetworkCounters::default();
    let count = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let send = |peer, zone, body| {
        let request = Request { zone, body };
        deliver(peer, request, &routes, &counters)
    };
    let raft = |from, term| RequestBody::Raft(vote(node(from), node(3), term));
    let forward = |txs: usize| RequestBody::SubmitTxs(vec![vec![1]; txs]);

    assert!(send(a, zone, raft(2, 7)), "a claims node 2");
    assert!(send(a, other_zone, raft(1, 7)), "a zone not served");
    assert!(
        send(PeerId::random(), zone, forward(1)),
        "an outsider's forward"
    );
    assert_eq!(count(&counters.dropped_unauthorized), 3);
    assert!(driver.try_recv().is_err(), "none reached the driver");

    assert!(send(a, zone, raft(1, 7)));
    assert!(send(b, zone, raft(2, 8)));
    assert_eq!(
        count(&counters.dropped_backpressure),
        1,
        "the queue holds one"
    );
    match driver.try_recv() {
        Ok(Inbound::Raft(message)) => assert_eq!((message.from, message.term), (node(1), 7)),
        other => panic!("the driver got {other:?}"),
    }

    assert!(send(b, zone, forward(2)));
    match driver.try_recv() {
        Ok(Inbound::SubmitTxs(txs)) => assert_eq!(txs, vec![vec![1]; 2]),
        other => panic!("the driver got {other:?}"),
    }
    assert!(
        !send(b, zone, forward(MAX_FORWARD_BATCH + 1)),
        "an oversized forward closes the link"
    );
    assert_eq!(count(&counters.dropped_malformed), 1);
    assert!(driver.try_recv().is_err());
    assert_eq!(count(&counters.dropped_unauthorized), 3);
    assert_eq!(count(&counters.dropped_backpressure), 1);
}

/// A link whose stream cannot open holds at most [`MAX_QUEUED_PER_LINK`] messages and
/// counts the rest; when the open times out, what queued meanwhile is dropped, so the
/// queue takes a full load again rather than replaying stale messages.
#[tokio::test(start_paused = true)]
async fn a_link_that_cannot_open_holds_a_bounded_queue_and_sheds_it() {
    // A behaviour on no swarm: an open waits for a connection that never comes.
    let control = libp2p_stream::Behaviour::new().new_control();
    let counters = Arc::new(NetworkCounters::default());
    let mut links = Links::new(control, counters.clone());
    let (peer, zone) = (PeerId::random(), Hash32([1; 32]));
    let dropped = || counters.dropped_backpressure.load(Ordering::Relaxed);
    let mut send = |term| links.send(peer, zone, RequestBody::Raft(vote(node(1), node(2), term)));
    for term in 0..MAX_QUEUED_PER_LINK as u64 + 3 {
        send(term);
    }
    assert_eq!(dropped(), 3, "the queue holds {MAX_QUEUED_PER_LINK}");
    // The writer takes the first message and tries to open the link until it gives up.
    tokio::time::sleep(OPEN_TIMEOUT + REOPEN_PAUSE / 2).await;
    for term in 0..MAX_QUEUED_PER_LINK as u64 {
        send(term);
    }
    assert_eq!(dropped(), 3, "the stale messages were shed");
    send(0);
    assert_eq!(dropped(), 4, "and the bound holds again");

    // A peer that leaves the zone's configuration loses its link.
    links.retain(&zone, &[(node(2), PeerId::random())].into());
    assert!(links.queues.is_empty());
}

/// A free loopback port below the kernel's ephemeral range (the tests' rule for servers).
fn free_port() -> u16 {
    let start = 22_000 + (std::process::id() % 4_000) as u16;
    (start..30_000)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port")
}

/// A node's network with one zone: its handle, what reaches its driver, and what it sends.
async fn start(
    key: &libp2p::identity::Keypair,
    port: u16,
    peers: Vec<libp2p::Multiaddr>,
    validators: &BTreeMap<NodeId, PeerId>,
) -> (
    tokio::task::JoinHandle<()>,
    mpsc::Receiver<Inbound>,
    mpsc::Sender<super::super::Outbound>,
    Arc<NetworkCounters>,
) {
    let (inbound, driver) = mpsc::channel(64);
    let (outbound, from_driver) = mpsc::channel(64);
    let (_zones, no_more_zones) = mpsc::channel(1);
    let counters = Arc::new(NetworkCounters::default());
    let config = super::super::NetworkConfig {
        keypair: key.clone(),
        listen: format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap(),
        peers: peers.clone(),
    };
    let link = super::super::ZoneLink {
        zone: Hash32([1; 32]),
        validators: validators.clone(),
        inbound,
        outbound: from_driver,
        peers,
    };
    let handle = super::super::spawn(config, vec![link], no_more_zones, counters.clone())
        .await
        .unwrap();
    (handle, driver, outbound, counters)
}

/// The term of the next Raft message to reach `driver` within `wait`.
async fn received(driver: &mut mpsc::Receiver<Inbound>, wait: Duration) -> Option<u64> {
    match tokio::time::timeout(wait, driver.recv()).await {
        Ok(Some(Inbound::Raft(message))) => Some(message.term),
        _ => None,
    }
}

/// A link left open while its peer restarted still delivers the next message, the first
/// one after the restart included: the write that finds the old connection closed is
/// made again on a new stream. (Before, that message was lost; an election's pre-vote
/// answer lost so cost a second election timeout.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_whose_peer_restarted_delivers_the_first_message_after() {
    let (a_key, b_key) = (
        libp2p::identity::Keypair::generate_ed25519(),
        libp2p::identity::Keypair::generate_ed25519(),
    );
    let (a_peer, b_peer) = (a_key.public().to_peer_id(), b_key.public().to_peer_id());
    let validators: BTreeMap<NodeId, PeerId> = [(node(1), a_peer), (node(2), b_peer)].into();
    let b_port = free_port();
    let b_address: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{b_port}/p2p/{b_peer}")
        .parse()
        .unwrap();
    let (b, mut b_driver, _b_out, _) = start(&b_key, b_port, vec![], &validators).await;
    let (_a, _a_driver, a_out, a_counters) =
        start(&a_key, free_port(), vec![b_address], &validators).await;
    let send = |term| {
        let message = Box::new(vote(node(1), node(2), term));
        a_out
            .try_send(super::super::Outbound::Raft(message))
            .unwrap()
    };

    // The first message may go before the connection is up: send until one arrives.
    let mut term = 0;
    loop {
        term += 1;
        send(term);
        if received(&mut b_driver, Duration::from_millis(200))
            .await
            .is_some()
        {
            break;
        }
        assert!(term < 100, "no message reached b");
    }
    let connected = |n: u64| {
        let counters = a_counters.clone();
        async move {
            for _ in 0..200 {
                if counters.connected_peers.load(Ordering::Relaxed) == n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("a never had {n} peers connected");
        }
    };
    b.abort();
    let _ = b.await;
    drop(b_driver);
    connected(0).await;
    let (_b, mut b_driver, _b_out, _) = start(&b_key, b_port, vec![], &validators).await;
    connected(1).await;
    send(1_000);
    assert_eq!(
        received(&mut b_driver, Duration::from_secs(5)).await,
        Some(1_000),
        "the first message after the restart arrived"
    );
}
