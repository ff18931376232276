//! The explorer page every node serves at `/`, in a real browser: Debian's `chromium`,
//! driven through `chromedriver` (WebDriver) against a live node, with the vote and the
//! transfer made through the `agora` binary. It checks what the page shows, without
//! reloading it: the validators and their weights chart, a proposal's tally bar moving
//! after a vote, a new block, an account found by search with its Merkle proof checked in
//! the page. It takes screenshots at desktop and phone width (into `AGORA_SCREENSHOTS`
//! when set: `AGORA_SCREENSHOTS=docs/screenshots cargo test -p agora-cli --test explorer`).
//!
//! The browser is required: without `chromedriver` the test fails (`.ci/run` installs
//! Debian's `chromium` and `chromium-driver`).

use agora_api::{AccountResponse, SubmitResponse};
use agora_core::genesis::{Genesis, GenesisAccount};
use agora_core::{AccountId, Amount, Hash32, KeyKind, Params};
use agora_tests::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Kills chromedriver and the browsers it started (its process group) when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn start_chromedriver(dir: &Path) -> (Driver, u16) {
    assert!(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "the explorer test needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): apt-get install chromium chromium-driver (.ci/run installs them)"
    );
    let port = free_port();
    let log = std::fs::File::create(dir.join("chromedriver.log")).unwrap();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver listens"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (driver, port)
}

/// Polls `check` (a JavaScript expression) until it is truthy; its last value on timeout.
async fn wait_js(client: &Client, what: &str, check: &str) -> Value {
    let started = Instant::now();
    loop {
        let value = client
            .execute(&format!("return ({check});"), vec![])
            .await
            .unwrap();
        let truthy = match &value {
            Value::Null | Value::Bool(false) => false,
            Value::String(s) => !s.is_empty(),
            Value::Number(n) => n.as_f64() != Some(0.0),
            _ => true,
        };
        if truthy {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "the page never showed {what} ({check} is {value})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The rendered text of the element `css` finds, read in one script: the page re-renders
/// parts as the chain moves, so an element found by one WebDriver call can be gone by
/// the next (a stale element reference).
async fn text(client: &Client, css: &str) -> String {
    let css_literal = serde_json::to_string(css).unwrap();
    let value = client
        .execute(
            &format!("const e = document.querySelector({css_literal}); return e === null ? null : e.innerText;"),
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    match value {
        Value::String(text) => text.trim().to_string(),
        other => panic!("{css}: no such element ({other})"),
    }
}

#[test]
fn the_explorer_shows_the_chain_and_follows_it_live_in_chromium() {
    let dir = std::env::temp_dir().join(format!("agora-explorer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (_driver, driver_port) = start_chromedriver(&dir);
    let mut agora = Agora {
        node: String::new(),
        dir: dir.clone(),
    };
    let mut members = Vec::new();
    for name in ["alice", "bob"] {
        let created = agora.json(
            &format!("{name}.key"),
            &["keys", "new", "--kind", "ml-dsa-44"],
        );
        members.push(created["account"].as_str().unwrap().to_string());
    }
    let genesis = Genesis {
        witnesses: vec![],
        chain_name: "explorer".into(),
        params: Params {
            voting_period_blocks: 3_000,
            unbonding_blocks: 3_001,
            ..Params::default()
        },
        accounts: members
            .iter()
            .zip([100u128, 60])
            .map(|(id, stake)| GenesisAccount {
                account: AccountId(Hash32::from_hex(id).unwrap()),
                balance: Amount(1_000_000_000),
                staked: Amount(stake * 1_000_000),
            })
            .collect(),
        validators: vec![seeded_validator("explorer-validator")],
        treasury: Amount(0),
    }
    .normalized()
    .unwrap();
    let validator = AccountId::from_public_key(
        agora_testkit::seeded_key(KeyKind::MlDsa44, "explorer-validator").public_key(),
    )
    .to_string();
    let (url, _stop) = start_node(
        &dir,
        &genesis,
        &TestNode::new("explorer-validator"),
        vec![],
        false,
    );
    agora.node = url.clone();
    wait_up(&url, &dir);
    let proposed: SubmitResponse = agora.answer(
        "alice.key",
        &[
            "propose",
            "text",
            "--title",
            "Adopt the charter",
            "--body",
            "…",
            "--deposit",
            "1",
            "--wait",
        ],
    );
    assert!(applied(&proposed));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A WebDriver call has no timeout of its own: a stuck browser fails the test here
    // instead of stalling the suite (it hung once, idle, for 10 minutes).
    let finished = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(300), async {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1100"]
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
            .expect("a chromium session");
        client.goto(&format!("{url}/")).await.unwrap();
        wait_js(&client, "the page loaded", "document.body.dataset.ready === 'true'").await;
        assert_eq!(client.title().await.unwrap(), "Agora explorer");

        // Chain status and validators, as the node has them.
        let status = text(&client, "#status").await;
        assert!(status.contains("leader") && status.contains(&validator[..12]), "{status}");
        let rows = client.execute("return document.querySelectorAll('#validators tbody tr').length;", vec![]).await.unwrap();
        assert_eq!(rows, json!(1), "one validator");
        let row = text(&client, "#validators tbody tr").await;
        assert!(row.starts_with(&validator[..12]) && row.contains("10"), "{row}");
        let series = wait_js(&client, "the weights chart", "document.querySelectorAll('#weights-svg polyline.series').length").await;
        assert_eq!(series, json!(1));

        // The proposal, no votes yet; then Bob votes yes through the CLI.
        let yes = "document.querySelector('[data-proposal=\"0\"]')?.dataset.yes";
        wait_js(&client, "proposal 0", &format!("{yes} === '0'")).await;
        let card = text(&client, "[data-proposal=\"0\"]").await;
        assert!(card.contains("Adopt the charter") && card.contains("voting") && card.contains("blocks left"), "{card}");
        let width = "document.querySelector('[data-proposal=\"0\"] [data-part=\"yes\"]').style.width";
        assert_eq!(client.execute(&format!("return {width};"), vec![]).await.unwrap(), json!("0%"));
        let voted: SubmitResponse = agora.answer("bob.key", &["vote", "0", "yes", "--wait"]);
        assert!(applied(&voted));
        wait_js(&client, "the tally bar after the vote", &format!("{yes} === '60000000'")).await;
        // 60 of 160 staked tokens: the yes segment is 37.5% of the bar.
        let moved = client.execute(&format!("return {width};"), vec![]).await.unwrap();
        assert_eq!(moved, json!("37.5%"));
        let card = text(&client, "[data-proposal=\"0\"]").await;
        assert!(card.contains("yes 60") && card.contains("1 vote"), "{card}");

        // A transfer through the CLI: its block appears, with the transaction, unreloaded.
        let sent: SubmitResponse = agora.answer("alice.key", &["transfer", &members[1], "2.5", "--wait"]);
        let height = sent.height.unwrap();
        let item = format!("#blocks li[data-height=\"{height}\"] li[data-tx=\"{}\"]", sent.tx_hash);
        wait_js(&client, "the new block with the transfer", &format!("document.querySelector('{item}') !== null")).await;
        let block = text(&client, &format!("#blocks li[data-height=\"{height}\"]")).await;
        assert!(block.contains(&format!("height {height}")) && block.contains("1 transaction"), "{block}");
        let unreloaded = client.execute("return performance.getEntriesByType('navigation').length;", vec![]).await.unwrap();
        assert_eq!(unreloaded, json!(1), "one navigation: the page was never reloaded");

        // Search Alice's account: the balance, and the proof checked in the page.
        let account: AccountResponse = agora.answer("alice.key", &["account", &members[0]]);
        let search = client.find(Locator::Id("search")).await.unwrap();
        search.send_keys(&members[0]).await.unwrap();
        client.find(Locator::Css("#search-form button")).await.unwrap().click().await.unwrap();
        wait_js(&client, "the account page", "document.querySelector('#proof-result') !== null").await;
        let balance = text(&client, "#account-balance").await;
        assert_eq!(balance, agora_cli::format::tokens(account.balance));
        let proof = text(&client, "#proof-result").await;
        assert!(proof.starts_with("proof verified in this page"), "{proof}");
        assert!(proof.contains(&format!("nonce {}", account.nonce)), "{proof}");
        // The page's own check refuses a value the proof does not cover.
        let checks = client
            .execute_async(
                &format!("const done = arguments[arguments.length - 1]; fetch('/v1/proof?key=account:{}').then(r => r.json()).then(r => done([agoraVerifyProof(r.at.state_root, r.key, r.value, r.proof.siblings), agoraVerifyProof(r.at.state_root, r.key, 'ff' + r.value.slice(2), r.proof.siblings)]));", members[0]),
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(checks, json!([true, false]));

        // Screenshots, and nothing wider than a phone's screen.
        let shots = std::env::var_os("AGORA_SCREENSHOTS").map(PathBuf::from).unwrap_or_else(|| dir.clone());
        std::fs::create_dir_all(&shots).unwrap();
        std::fs::write(shots.join("explorer-desktop.png"), client.screenshot().await.unwrap()).unwrap();
        client.set_window_size(390, 1400).await.unwrap();
        wait_js(&client, "the phone layout", "window.innerWidth <= 400").await;
        let fits = client.execute("return document.documentElement.scrollWidth <= window.innerWidth;", vec![]).await.unwrap();
        assert_eq!(fits, json!(true), "no sideways scrolling at phone width");
        std::fs::write(shots.join("explorer-phone.png"), client.screenshot().await.unwrap()).unwrap();
        client.close().await.unwrap();
    })
    .await
    });
    finished.expect("the browser session ended within 5 minutes");
    std::fs::remove_dir_all(&dir).unwrap();
}
