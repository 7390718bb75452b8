//! A headless Chromium driven over WebDriver: ChromeDriver started by the
//! test on a free loopback port, and a fantoccini client on it. Tests
//! skip with a message when Chromium or ChromeDriver is missing, unless
//! `REQUIRE_CHROMIUM=1` (CI), which makes a missing browser a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};

use super::{WAIT, eventually, skipped};

const CHROMIUM: [&str; 2] = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Ports tried when another process takes the one picked first.
const PORT_TRIES: usize = 5;

/// ChromeDriver and a browser session on it; both end when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Browser {
    /// A headless browser, or `None` (the test skipped) when none is
    /// installed and `REQUIRE_CHROMIUM=1` is not set.
    pub async fn start(test: &str) -> Option<Self> {
        let chromium = CHROMIUM.iter().map(Path::new).find(|p| p.is_file());
        let (Some(chromium), true) = (chromium, Path::new(CHROMEDRIVER).is_file()) else {
            assert!(
                std::env::var("REQUIRE_CHROMIUM").as_deref() != Ok("1"),
                "REQUIRE_CHROMIUM=1 but chromium or chromedriver is not installed"
            );
            skipped(test, "chromium and chromedriver are not installed");
            return None;
        };
        for _ in 0..PORT_TRIES {
            let port = free_port();
            let mut driver = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting chromedriver");
            let url = format!("http://127.0.0.1:{port}");
            let up = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    if let Some(status) = driver.try_wait().expect("chromedriver's status") {
                        return Err(status);
                    }
                    let status = super::client().get(format!("{url}/status")).send().await;
                    if status.is_ok_and(|s| s.status().is_success()) {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await;
            match up {
                Ok(Ok(())) => {
                    let client = session(&url, chromium).await;
                    return Some(Self { client, driver });
                }
                // Exited: most likely the port was taken meanwhile.
                Ok(Err(_)) => continue,
                Err(_) => {
                    let _ = driver.kill();
                    let _ = driver.wait();
                    panic!("chromedriver did not answer on {url} within 20 s");
                }
            }
        }
        panic!("chromedriver did not start on any of {PORT_TRIES} free ports");
    }

    /// Saves a screenshot as `target/console-screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("taking a screenshot");
        let dir = super::target_dir().join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Waits until the page's element at `css` has text satisfying `ok`;
    /// returns the text.
    pub async fn text_until(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let client = &self.client;
        eventually(format!("`{css}` to show the expected text"), || async {
            let found = client.find(fantoccini::Locator::Css(css)).await.ok()?;
            let text = found.text().await.ok()?;
            ok(&text).then_some(text)
        })
        .await
    }
}

impl Browser {
    /// Waits until the `attr` of the elements at `css`, in page order,
    /// satisfy `ok`; returns them. Each try finds the elements again: a
    /// live list re-renders, and an element found once may be gone.
    pub async fn attrs_until(
        &self,
        css: &str,
        attr: &str,
        ok: impl Fn(&[Option<String>]) -> bool,
    ) -> Vec<Option<String>> {
        let client = &self.client;
        eventually(format!("the `{attr}` of `{css}`"), || async {
            let found = client.find_all(fantoccini::Locator::Css(css)).await.ok()?;
            let mut values = Vec::with_capacity(found.len());
            for element in &found {
                values.push(element.attr(attr).await.ok()?);
            }
            ok(&values).then_some(values)
        })
        .await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The session ends with its driver; Chromium goes with both.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A port nothing listens on right now (ChromeDriver cannot take port 0).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

async fn session(url: &str, chromium: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,860"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    tokio::time::timeout(
        WAIT,
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(url),
    )
    .await
    .expect("a browser session within the wait")
    .expect("starting a headless chromium session")
}
