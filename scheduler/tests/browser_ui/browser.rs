//! A headless Chromium driven over WebDriver: Debian's `chromedriver` (package `chromium-driver`)
//! is started on a free port in its own process group, `fantoccini` opens one session on the
//! distribution's `chromium`, and dropping the [`Browser`] kills the whole group (driver and
//! browser processes), even when a test panics.

use std::fs::{self, File};
use std::os::unix::process::CommandExt as _;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tempfile::TempDir;

use super::e2e_support::free_port;

/// How long a test waits for something to appear on a page.
pub(crate) const UI_DEADLINE: Duration = Duration::from_secs(30);

/// How long chromedriver may take to answer `/status`.
const DRIVER_DEADLINE: Duration = Duration::from_secs(20);

/// Interval between two looks at the page.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Width of the browser window.
const WINDOW_WIDTH: u32 = 1280;

/// Height of the browser window, and the least height of a screenshot.
const WINDOW_HEIGHT: u32 = 1000;

/// Full-page screenshots are cut at this height.
const MAX_SCREENSHOT_HEIGHT: u32 = 6000;

/// Chromium's arguments: headless, and runnable as root in a container.
const CHROMIUM_ARGS: [&str; 4] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
];

/// Installed on every document before its own scripts run: records uncaught exceptions and
/// unhandled promise rejections, so that a failure message can quote the page's JS errors.
const ERROR_RECORDER: &str = r#"
window.__browserUiErrors = [];
window.addEventListener('error', (event) => {
    if (event instanceof ErrorEvent) {
        window.__browserUiErrors.push(`${event.message} (${event.filename}:${event.lineno})`);
    }
});
window.addEventListener('unhandledrejection', (event) => {
    window.__browserUiErrors.push(`unhandled rejection: ${event.reason}`);
});
"#;

/// The directory of the screenshots and failure captures: `<target dir>/browser-artifacts`.
pub(crate) fn artifacts_dir() -> PathBuf {
    // The binary under test lives in `<target dir>/<profile>/eremetic`, whatever
    // CARGO_TARGET_DIR says.
    let binary = Path::new(env!("CARGO_BIN_EXE_eremetic"));
    let target = binary
        .parent()
        .and_then(Path::parent)
        .expect("the eremetic binary lies in <target dir>/<profile>/");
    let dir = target.join("browser-artifacts");
    fs::create_dir_all(&dir).unwrap_or_else(|error| {
        panic!("create the artifacts directory {}: {error}", dir.display())
    });
    dir
}

/// The first of `names` found in a directory of `PATH`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// The Chromium and chromedriver executables; fails the test when either is missing.
fn require_browser() -> (PathBuf, PathBuf) {
    let chromium = on_path(&["chromium", "chromium-browser"]);
    let driver = on_path(&["chromedriver"]);
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => (chromium, driver),
        (chromium, driver) => {
            let mut missing = Vec::new();
            if chromium.is_none() {
                missing.push("chromium (Debian package chromium)");
            }
            if driver.is_none() {
                missing.push("chromedriver (Debian package chromium-driver)");
            }
            panic!(
                "the browser tests need {} on PATH: run scripts/setup",
                missing.join(" and ")
            );
        }
    }
}

/// A chromedriver process in its own process group; dropping it kills the group.
struct Driver {
    child: Option<Child>,
    url: String,
    dir: TempDir,
}

impl Driver {
    /// Starts `chromedriver` on a free port and waits until it answers `/status`.
    async fn start(path: &Path) -> Driver {
        let dir = tempfile::Builder::new()
            .prefix("eremetic-browser-")
            .tempdir()
            .expect("create the browser's temporary directory");
        let port = free_port();
        let log = File::create(dir.path().join("chromedriver.log"))
            .expect("create the chromedriver log file");
        let log_err = log
            .try_clone()
            .expect("duplicate the chromedriver log handle");
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            // Its own process group: Drop kills the driver and every browser process with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", path.display()));
        let mut driver = Driver {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        driver.wait_ready().await;
        driver
    }

    async fn wait_ready(&mut self) {
        let started = Instant::now();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("build an HTTP client");
        let url = format!("{}/status", self.url);
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!(
                    "chromedriver exited during start-up with {status}\n{}",
                    self.log()
                );
            }
            if let Ok(response) = client.get(&url).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            if started.elapsed() > DRIVER_DEADLINE {
                panic!(
                    "chromedriver did not answer /status within {DRIVER_DEADLINE:?}\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens a session on a headless `chromium` with a profile of its own.
    async fn connect(&self, chromium: &Path) -> Client {
        let profile = self.dir.path().join("profile");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|arg| (*arg).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push(format!("--window-size={WINDOW_WIDTH},{WINDOW_HEIGHT}"));
        let capabilities = json!({
            "browserName": "chrome",
            // Dialogs are answered explicitly by the tests, never dismissed behind their back.
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal");
        };
        let capabilities: Capabilities = capabilities;
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "open a Chromium session through chromedriver: {error}\n{}",
                    self.log()
                )
            })
    }

    /// The last lines of chromedriver's output, for failure messages.
    fn log(&self) -> String {
        let text = fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(30)..];
        format!(
            "--- chromedriver log (last {} lines) ---\n{}",
            tail.len(),
            tail.join("\n")
        )
    }
}

impl Drop for Driver {
    /// Kills chromedriver's process group (the driver and the browser it started) and reaps
    /// the driver.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One chromedriver process and one browser session on it.
pub(crate) struct Browser {
    client: Client,
    base_url: String,
    // Declared last: dropped after the client, it kills the processes.
    driver: Driver,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; relative paths given to the
    /// helpers are resolved against `base_url` (the service, `http://127.0.0.1:<port>`).
    pub(crate) async fn start(base_url: &str) -> Browser {
        let (chromium, driver_path) = require_browser();
        let driver = Driver::start(&driver_path).await;
        let client = driver.connect(&chromium).await;
        let browser = Browser {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            driver,
        };
        browser.install_error_recorder().await;
        browser
    }

    /// Asks Chromium (through chromedriver's CDP bridge) to run [`ERROR_RECORDER`] on every
    /// new document.
    async fn install_error_recorder(&self) {
        let session = self
            .client
            .session_id()
            .await
            .expect("read the WebDriver session id")
            .expect("an open session has an id");
        let url = format!("{}/session/{session}/goog/cdp/execute", self.driver.url);
        let body = json!({
            "cmd": "Page.addScriptToEvaluateOnNewDocument",
            "params": {"source": ERROR_RECORDER},
        });
        let response = reqwest::Client::new()
            .post(&url)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|error| panic!("POST {url}: {error}"));
        assert!(
            response.status().is_success(),
            "chromedriver refused Page.addScriptToEvaluateOnNewDocument: {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// The absolute URL of `path` on the service.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Navigates to `path` of the service and waits for the document to load.
    pub(crate) async fn goto(&self, path: &str) {
        let url = self.url(path);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|error| panic!("navigate to {url}: {error}"));
    }

    /// The URL of the current document.
    pub(crate) async fn current_url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|url| url.to_string())
            .unwrap_or_else(|error| panic!("read the current URL: {error}"))
    }

    /// Whether the current URL contains `part` within `timeout`.
    pub(crate) async fn url_within(&self, part: &str, timeout: Duration) -> bool {
        let started = Instant::now();
        loop {
            if self.current_url().await.contains(part) {
                return true;
            }
            if started.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The element matching `css`, waiting for it to appear.
    pub(crate) async fn element(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(error) if started.elapsed() > UI_DEADLINE => {
                    let url = self.current_url().await;
                    panic!("no element matches `{css}` on {url} after {UI_DEADLINE:?}: {error}");
                }
                Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
            }
        }
    }

    /// Whether an element matches `css` right now.
    pub(crate) async fn exists(&self, css: &str) -> bool {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|found| !found.is_empty())
            .unwrap_or(false)
    }

    /// The visible text of the element matching `css` right now (`None` when absent).
    pub(crate) async fn text_now(&self, css: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        element.text().await.ok()
    }

    /// Waits until the text of the element matching `css` satisfies `accept` and returns it;
    /// fails after [`UI_DEADLINE`] naming `what`, every distinct text seen, and the page's JS
    /// errors. The page is never reloaded: the change must come from the page itself.
    pub(crate) async fn wait_text(
        &self,
        css: &str,
        what: &str,
        accept: impl Fn(&str) -> bool,
    ) -> String {
        let started = Instant::now();
        let mut seen: Vec<String> = Vec::new();
        loop {
            let text = self.text_now(css).await;
            if let Some(text) = &text {
                if accept(text) {
                    return text.clone();
                }
            }
            let shown = text.unwrap_or_else(|| "<no such element>".to_owned());
            if seen.last() != Some(&shown) {
                seen.push(shown);
            }
            if started.elapsed() > UI_DEADLINE {
                let url = self.current_url().await;
                panic!(
                    "`{css}` on {url} did not show {what} within {UI_DEADLINE:?}; it showed, in order: \
                     {seen:?}\npage JS errors: {:?}",
                    self.js_errors().await
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Types `value` into the field matching `css`, replacing its content as a person would.
    pub(crate) async fn fill(&self, css: &str, value: &str) {
        let field = self.element(css).await;
        field
            .clear()
            .await
            .unwrap_or_else(|error| panic!("clear `{css}`: {error}"));
        field
            .send_keys(value)
            .await
            .unwrap_or_else(|error| panic!("type {value:?} into `{css}`: {error}"));
    }

    /// Clicks the element matching `css`, waiting for it to appear. A page script may replace
    /// the element between the look-up and the click (the list re-renders its rows): the
    /// click is then retried on the new element, until [`UI_DEADLINE`].
    pub(crate) async fn click(&self, css: &str) {
        let started = Instant::now();
        loop {
            let error = match self.client.find(Locator::Css(css)).await {
                Ok(element) => match element.click().await {
                    Ok(()) => return,
                    Err(error) => error,
                },
                Err(error) => error,
            };
            if started.elapsed() > UI_DEADLINE {
                let url = self.current_url().await;
                panic!("click `{css}` on {url} (tried for {UI_DEADLINE:?}): {error}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits for a `confirm()` (or `alert()`) dialog, accepts it and returns its message.
    pub(crate) async fn accept_dialog(&self) -> String {
        let started = Instant::now();
        loop {
            match self.client.get_alert_text().await {
                Ok(text) => {
                    self.client
                        .accept_alert()
                        .await
                        .unwrap_or_else(|error| panic!("accept the dialog {text:?}: {error}"));
                    return text;
                }
                Err(error) if started.elapsed() > UI_DEADLINE => {
                    panic!("no confirmation dialog opened within {UI_DEADLINE:?}: {error}")
                }
                Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
            }
        }
    }

    /// Runs `script` in the page and returns its value.
    pub(crate) async fn execute(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|error| panic!("run {script:?} in the page: {error}"))
    }

    /// Marks the current document, so that [`Browser::still_same_document`] can tell whether
    /// the page was reloaded or left since.
    pub(crate) async fn mark_document(&self) {
        self.execute("window.__browserUiMark = 'not reloaded'; return true;")
            .await;
    }

    /// Whether the document marked by [`Browser::mark_document`] is still the current one.
    pub(crate) async fn still_same_document(&self) -> bool {
        self.execute("return window.__browserUiMark === 'not reloaded';")
            .await
            == Value::Bool(true)
    }

    /// The uncaught exceptions and unhandled rejections of the current document.
    pub(crate) async fn js_errors(&self) -> Vec<String> {
        match self
            .client
            .execute("return window.__browserUiErrors ?? null;", Vec::new())
            .await
        {
            Ok(Value::Array(errors)) => errors
                .iter()
                .map(|error| {
                    error
                        .as_str()
                        .map_or_else(|| error.to_string(), str::to_owned)
                })
                .collect(),
            Ok(Value::Null) => vec!["the error recorder did not run in this document".to_owned()],
            Ok(other) => vec![format!("unexpected error record {other}")],
            Err(error) => vec![format!("could not read the page's errors: {error}")],
        }
    }

    /// Fails the test if the current document raised an uncaught JS error.
    pub(crate) async fn assert_no_js_errors(&self) {
        let errors = self.js_errors().await;
        let url = self.current_url().await;
        assert!(
            errors.is_empty(),
            "the page {url} raised JS errors: {errors:?}"
        );
    }

    /// The serialized DOM of the current document (what the browser shows, scripts applied).
    pub(crate) async fn page_source(&self) -> String {
        self.client
            .source()
            .await
            .unwrap_or_else(|error| panic!("read the page source: {error}"))
    }

    /// Saves a PNG screenshot of the whole page (not only the viewport) as
    /// `<artifacts dir>/<name>` and returns its path.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        // The window is taller than the viewport by the height of the browser's own frame.
        let height = self
            .execute(
                "return document.documentElement.scrollHeight \
                 + Math.max(0, window.outerHeight - window.innerHeight);",
            )
            .await
            .as_u64()
            .unwrap_or(u64::from(WINDOW_HEIGHT));
        let height = u32::try_from(height)
            .unwrap_or(MAX_SCREENSHOT_HEIGHT)
            .clamp(WINDOW_HEIGHT, MAX_SCREENSHOT_HEIGHT);
        self.resize(height).await;
        let png = self.client.screenshot().await;
        self.resize(WINDOW_HEIGHT).await;
        let png = png.unwrap_or_else(|error| panic!("take a screenshot for {name}: {error}"));
        let path = artifacts_dir().join(name);
        fs::write(&path, &png)
            .unwrap_or_else(|error| panic!("write the screenshot {}: {error}", path.display()));
        path
    }

    async fn resize(&self, height: u32) {
        self.client
            .set_window_size(WINDOW_WIDTH, height)
            .await
            .unwrap_or_else(|error| {
                panic!("resize the window to {WINDOW_WIDTH}x{height}: {error}")
            });
    }

    /// Runs a test body; when it panics, saves `<test>-failure.png` and `<test>-failure.html`
    /// in the artifacts directory before letting the panic go on.
    pub(crate) async fn run(&self, test: &str, body: impl std::future::Future<Output = ()>) {
        // A capture left by an earlier failed run would describe a failure that is gone.
        for extension in ["png", "html"] {
            let _ = fs::remove_file(artifacts_dir().join(format!("{test}-failure.{extension}")));
        }
        let outcome = AssertUnwindSafe(body).catch_unwind().await;
        if let Err(panic) = outcome {
            self.save_failure_capture(test).await;
            resume_unwind(panic);
        }
    }

    /// Best effort: a failing test must report its own failure, not one of these.
    async fn save_failure_capture(&self, test: &str) {
        let dir = artifacts_dir();
        if let Ok(png) = self.client.screenshot().await {
            let _ = fs::write(dir.join(format!("{test}-failure.png")), png);
        }
        if let Ok(html) = self.client.source().await {
            let _ = fs::write(dir.join(format!("{test}-failure.html")), html);
        }
        eprintln!(
            "browser capture of the failure: {}/{test}-failure.{{png,html}}",
            dir.display()
        );
    }

    /// Ends the session (closing Chromium); dropping `self` then stops chromedriver.
    pub(crate) async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}
