//! The web UI in a real browser: headless Chromium (Debian's `chromium`, driven over WebDriver
//! by Debian's `chromedriver` through `fantoccini`) against the real `eremetic` binary and the
//! real Docker engine. Each test starts its own service and its own browser; both are killed
//! even when the test fails. The DOM ids and classes are those of the UI contract
//! (index: `form#new-task`, `table#tasks`; task page: `#state`, `pre#stdout`, `button#kill`).
//!
//! Artifacts go to `<target dir>/browser-artifacts/`: `index.png` and `task.png`, plus
//! `<test>-failure.png` and `<test>-failure.html` for a test that failed.
//! Chromium and chromedriver come from `scripts/setup`.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

#[path = "e2e_support/mod.rs"]
mod e2e_support;

#[path = "browser_ui/browser.rs"]
mod browser;

use std::time::Duration;

use browser::{artifacts_dir, Browser};
use e2e_support::{contains_bytes, shell_task, unique_name, with, Service, Settings, IMAGE};
use reqwest::Method;
use serde_json::json;
use tokio::sync::{Semaphore, SemaphorePermit};

/// The mask the UI shows instead of a masked value.
const MASK: &str = "*******";

/// How long the index may take to apply a changed filter by itself.
const FILTER_AUTO_APPLY: Duration = Duration::from_secs(2);

/// Two browsers at most at once: the machine has two cores, and a starved Chromium makes the
/// live-update deadlines flaky.
static BROWSER_SLOTS: Semaphore = Semaphore::const_new(2);

async fn browser_slot() -> SemaphorePermit<'static> {
    BROWSER_SLOTS
        .acquire()
        .await
        .expect("the browser semaphore is never closed")
}

/// A service with default settings and a browser pointed at it.
async fn service_and_browser() -> (Service, Browser) {
    let service = Service::start(Settings::new()).await;
    let browser = Browser::start(&service.url("")).await;
    (service, browser)
}

/// CSS selector of the list row of task `id`.
fn row(id: &str) -> String {
    format!("table#tasks tbody tr.task[data-task-id=\"{id}\"]")
}

/// The task id at the end of a task page link (`.../task/<id>`).
fn task_id_of_link(href: &str) -> Option<&str> {
    let (_, id) = href.rsplit_once("/task/")?;
    let id = id.split(['?', '#']).next()?;
    id.starts_with("eremetic-task.").then_some(id)
}

/// The HTML the service answers a browser for `path`, as raw bytes (the real page source,
/// before any script ran).
async fn raw_html(service: &Service, path: &str) -> Vec<u8> {
    let response = service
        .send(
            service
                .request(Method::GET, path)
                .header("Accept", "text/html"),
        )
        .await;
    let status = response.status();
    let body = response.bytes().await.unwrap().to_vec();
    assert!(
        status.is_success(),
        "GET {path} (Accept: text/html) answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

#[tokio::test]
async fn form_submission_shows_the_task_finishing_in_the_list_without_reload() {
    let _slot = browser_slot().await;
    let (service, browser) = service_and_browser().await;
    browser
        .run("form_submission", async {
            browser.goto("/").await;
            browser.element("form#new-task").await;
            browser.mark_document().await;

            browser.fill("form#new-task [name=image]", IMAGE).await;
            browser
                .fill(
                    "form#new-task [name=command]",
                    "echo hello-browser; sleep 1",
                )
                .await;
            browser.fill("form#new-task [name=cpu]", "0.1").await;
            browser.fill("form#new-task [name=mem]", "32").await;
            browser.click("button#submit-task").await;

            let link = browser.element("#submit-result a.task-link").await;
            let href = link.attr("href").await.unwrap().unwrap_or_default();
            let id = task_id_of_link(&href)
                .unwrap_or_else(|| panic!("#submit-result links to {href:?}, not a task page"))
                .to_owned();

            let state = format!("{} td.state", row(&id));
            browser
                .wait_text(&state, "TASK_FINISHED", |text| {
                    text.trim() == "TASK_FINISHED"
                })
                .await;
            assert!(
                browser.still_same_document().await,
                "the index page was reloaded or left while the task ran; the list must update \
                 in place"
            );
            browser.assert_no_js_errors().await;

            // The form sent what was typed.
            let task = service.wait_end(&id, "TASK_FINISHED").await;
            assert_eq!(task["image"], IMAGE, "image of the submitted task");
            assert_eq!(task["cpu"], 0.1, "cpu of the submitted task");
            assert_eq!(task["mem"], 32.0, "mem of the submitted task");
            assert_eq!(service.output(&id, "stdout").await, "hello-browser\n");
        })
        .await;
    browser.close().await;
}

#[tokio::test]
async fn task_page_opened_from_the_list_shows_the_stdout_of_the_task() {
    let _slot = browser_slot().await;
    let (service, browser) = service_and_browser().await;
    let id = service
        .submit(&shell_task("echo hello-browser; echo to-stderr >&2"))
        .await;
    service.wait_end(&id, "TASK_FINISHED").await;
    browser
        .run("task_page_stdout", async {
            // An ended task is listed once the filter includes terminated tasks.
            browser.goto("/").await;
            browser
                .element("form#filter select[name=state]")
                .await
                .select_by_value("terminated")
                .await
                .unwrap_or_else(|error| panic!("choose the `terminated` filter: {error}"));
            // The page may apply the filter as soon as it changes; otherwise press the button.
            if !browser
                .url_within("state=terminated", FILTER_AUTO_APPLY)
                .await
            {
                browser
                    .click("form#filter button, form#filter input[type=submit]")
                    .await;
            }
            browser
                .click(&format!("{} td.name a.task-link", row(&id)))
                .await;

            browser
                .wait_text("#task-id", "the task id", |text| text.trim() == id)
                .await;
            let url = browser.current_url().await;
            assert!(
                url.ends_with(&format!("/task/{id}")),
                "the list links to {url}, expected the task page /task/{id}"
            );
            browser
                .wait_text("#state", "TASK_FINISHED", |text| {
                    text.trim() == "TASK_FINISHED"
                })
                .await;
            browser
                .wait_text("pre#stdout", "hello-browser", |text| {
                    text.contains("hello-browser")
                })
                .await;
            browser
                .wait_text("pre#stderr", "to-stderr", |text| text.contains("to-stderr"))
                .await;
            browser
                .wait_text("#exit-code", "exit code 0", |text| text.trim() == "0")
                .await;
            assert!(
                !browser.exists("button#kill").await,
                "an ended task's page offers a kill button"
            );
            browser.assert_no_js_errors().await;
        })
        .await;
    browser.close().await;
}

#[tokio::test]
async fn kill_button_on_the_task_page_kills_a_running_task() {
    let _slot = browser_slot().await;
    let (service, browser) = service_and_browser().await;
    let id = service.submit(&shell_task("sleep 60")).await;
    service.wait_state(&id, "TASK_RUNNING").await;
    browser
        .run("kill_button", async {
            browser.goto(&format!("/task/{id}")).await;
            browser
                .wait_text("#state", "TASK_RUNNING", |text| {
                    text.trim() == "TASK_RUNNING"
                })
                .await;
            browser.click("button#kill").await;
            let question = browser.accept_dialog().await;
            assert!(
                !question.trim().is_empty(),
                "the kill confirmation is empty"
            );
            browser
                .wait_text("#state", "TASK_KILLED", |text| text.trim() == "TASK_KILLED")
                .await;
            browser.assert_no_js_errors().await;
        })
        .await;
    service.wait_end(&id, "TASK_KILLED").await;
    browser.close().await;
}

#[tokio::test]
async fn invalid_form_shows_the_error_next_to_the_field() {
    let _slot = browser_slot().await;
    let (service, browser) = service_and_browser().await;
    browser
        .run("invalid_form", async {
            browser.goto("/").await;
            browser.fill("form#new-task [name=image]", IMAGE).await;
            browser
                .fill("form#new-task [name=command]", "echo never-runs")
                .await;
            browser.fill("form#new-task [name=cpu]", "0.1").await;
            browser.fill("form#new-task [name=mem]", "1").await;
            browser.click("button#submit-task").await;

            let message = browser
                .wait_text(
                    ".field-error[data-field=\"mem\"]",
                    "an error message",
                    |text| !text.trim().is_empty(),
                )
                .await;
            assert!(
                message.contains('6') || message.to_lowercase().contains("mem"),
                "the mem error does not explain the problem (minimum 6 MiB): {message:?}"
            );
            for field in ["image", "cpu"] {
                let shown = browser
                    .text_now(&format!(".field-error[data-field=\"{field}\"]"))
                    .await
                    .unwrap_or_default();
                assert!(
                    shown.trim().is_empty(),
                    "the valid field {field} shows an error: {shown:?}"
                );
            }
            assert!(
                !browser.exists("#submit-result a.task-link").await,
                "a refused form shows a link to a task"
            );
            browser.assert_no_js_errors().await;
        })
        .await;
    let tasks = service.list("?state=queued,active,terminated").await;
    assert!(tasks.is_empty(), "a refused form created tasks: {tasks:?}");
    browser.close().await;
}

#[tokio::test]
async fn masked_env_value_is_never_in_the_page_source() {
    let _slot = browser_slot().await;
    let (service, browser) = service_and_browser().await;
    let secret = unique_name("hunter2-browser");
    let body = with(
        shell_task("sleep 60"),
        json!({"masked_env": {"SECRET": secret}, "env": {"PLAIN": "visible-value"}}),
    );
    let id = service.submit(&body).await;
    service.wait_state(&id, "TASK_RUNNING").await;
    browser
        .run("masked_env", async {
            // The index lists the running task.
            browser.goto("/").await;
            browser
                .wait_text(&format!("{} td.state", row(&id)), "TASK_RUNNING", |text| {
                    text.trim() == "TASK_RUNNING"
                })
                .await;
            let index = browser.page_source().await;
            assert_no_secret(&secret, "the index page (DOM)", index.as_bytes());
            assert_no_secret(
                &secret,
                "the index page (HTML)",
                &raw_html(&service, "/").await,
            );

            // The task page shows the key, masked, and the plain env in clear.
            let path = format!("/task/{id}");
            browser.goto(&path).await;
            browser
                .wait_text("#masked-env", "the masked key", |text| {
                    text.contains("SECRET") && text.contains(MASK)
                })
                .await;
            browser
                .wait_text("#env", "the plain env", |text| {
                    text.contains("visible-value")
                })
                .await;
            let page = browser.page_source().await;
            assert_no_secret(&secret, "the task page (DOM)", page.as_bytes());
            assert_no_secret(
                &secret,
                "the task page (HTML)",
                &raw_html(&service, &path).await,
            );
            browser.assert_no_js_errors().await;
        })
        .await;
    service.kill_task(&id).await;
    browser.close().await;
}

fn assert_no_secret(secret: &str, place: &str, bytes: &[u8]) {
    assert!(
        !contains_bytes(bytes, secret.as_bytes()),
        "the masked value is in {place}:\n{}",
        String::from_utf8_lossy(bytes)
    );
}

#[tokio::test]
async fn screenshots_of_index_and_task_pages_are_saved() {
    let _slot = browser_slot().await;
    let (service, browser) = service_and_browser().await;
    let finished = service
        .submit(&with(
            shell_task("printf 'hello \\033[32mgreen\\033[0m world\\n'; echo done >&2"),
            json!({"name": "screenshot-finished", "env": {"GREETING": "hello"},
                   "labels": {"team": "ui"}}),
        ))
        .await;
    let running = service
        .submit(&with(
            shell_task("sleep 60"),
            json!({"name": "screenshot-running"}),
        ))
        .await;
    service.wait_end(&finished, "TASK_FINISHED").await;
    service.wait_state(&running, "TASK_RUNNING").await;
    browser
        .run("screenshots", async {
            browser.goto("/").await;
            browser
                .wait_text(
                    &format!("{} td.state", row(&running)),
                    "TASK_RUNNING",
                    |text| text.trim() == "TASK_RUNNING",
                )
                .await;
            let index = browser.screenshot("index.png").await;

            browser.goto(&format!("/task/{finished}")).await;
            browser
                .wait_text("pre#stdout", "the task's output", |text| {
                    text.contains("green")
                })
                .await;
            let task = browser.screenshot("task.png").await;

            for path in [index, task] {
                let png = std::fs::read(&path).unwrap();
                assert!(
                    png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
                    "{} is not a PNG screenshot ({} bytes)",
                    path.display(),
                    png.len()
                );
            }
        })
        .await;
    service.kill_task(&running).await;
    browser.close().await;
    eprintln!("screenshots saved in {}", artifacts_dir().display());
}

#[test]
fn task_links_name_the_task() {
    assert_eq!(
        task_id_of_link("/task/eremetic-task.1234?x=1"),
        Some("eremetic-task.1234")
    );
    assert_eq!(
        task_id_of_link("http://127.0.0.1:1/prefix/task/eremetic-task.ab#top"),
        Some("eremetic-task.ab")
    );
    assert_eq!(task_id_of_link("/task/"), None);
    assert_eq!(task_id_of_link("/cluster"), None);
}
