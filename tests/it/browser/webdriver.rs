//! Headless Chromium through ChromeDriver's plain HTTP/JSON WebDriver protocol, spoken with
//! the harness's own HTTP client; every process it starts is reaped by PID on drop.

use crate::harness::http::{self, Response};
use crate::harness::TempDir;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// (chromium, chromedriver), or `None` after printing why the test is skipped.
pub(super) fn tools() -> Option<(PathBuf, PathBuf)> {
    // `$VAR` if set, else the Debian path, else the first `name` on `PATH`.
    let find = |var: &str, default: &str| {
        if let Some(path) = std::env::var_os(var) {
            let path = PathBuf::from(path);
            return path.is_file().then_some(path);
        }
        let name = Path::new(default).file_name().unwrap();
        let path_dirs = std::env::var_os("PATH").unwrap_or_default();
        std::iter::once(PathBuf::from(default))
            .chain(std::env::split_paths(&path_dirs).map(|d| d.join(name)))
            .find(|p| p.is_file())
    };
    match (
        find("TOPICS_CHROMIUM", "/usr/bin/chromium"),
        find("TOPICS_CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ => {
            let reason = "chromium not installed (apt-get install chromium chromium-driver, \
                          or set TOPICS_CHROMIUM / TOPICS_CHROMEDRIVER)";
            assert!(
                std::env::var("TOPICS_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "browser: TOPICS_REQUIRE_BROWSER=1 but {reason}"
            );
            println!("browser: skipped: {reason}");
            None
        }
    }
}

/// The key under which WebDriver returns an element reference (W3C WebDriver §12.1).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

// ---------------------------------------------------------------------------------------------
// WebDriver
// ---------------------------------------------------------------------------------------------

/// A ChromeDriver process and one headless Chromium session. Drop ends the session, then kills
/// by PID whatever is left of the processes it started (ChromeDriver, its descendants, anything
/// still running on this test's profile dir), even when the test failed.
pub(super) struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: Option<String>,
    profile: TempDir,
}

impl Browser {
    pub(super) fn launch(chromium: &Path, chromedriver: &Path) -> Browser {
        let profile = TempDir::new();
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                profile.path().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", chromedriver.display()));
        let mut browser = Browser {
            driver,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            session: None,
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = http::try_request(browser.addr, "GET", "/status", &[], b"")
                .ok()
                .filter(|r| r.status == 200)
                .is_some_and(|r| r.json()["value"]["ready"] == true);
            if ready {
                break;
            }
            if let Ok(Some(status)) = browser.driver.try_wait() {
                panic!("chromedriver exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "chromedriver not ready in 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        let user_data = browser.profile.path().join("profile");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-breakpad",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", user_data.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let value = browser.call("POST", "/session", Some(&caps));
        let session = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId: {value}"));
        browser.session = Some(session.to_string());
        browser
    }

    /// One WebDriver command; returns `value`, panics with the WebDriver error otherwise.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        let resp: Response = http::request(
            self.addr,
            method,
            path,
            &[("Content-Type", "application/json; charset=utf-8")],
            bytes.as_deref().unwrap_or_default(),
        );
        let mut body = resp.json();
        assert_eq!(resp.status, 200, "WebDriver {method} {path}: {body}");
        body["value"].take()
    }

    fn session_call(&self, method: &str, sub: &str, body: Option<&Value>) -> Value {
        let sid = self.session.as_deref().expect("no WebDriver session");
        self.call(method, &format!("/session/{sid}{sub}"), body)
    }

    pub(super) fn navigate(&self, url: &str) {
        self.session_call("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Run `script` as a function body in the page with `args`; returns what it returns.
    pub(super) fn exec(&self, script: &str, args: Value) -> Value {
        let body = json!({ "script": script, "args": args });
        self.session_call("POST", "/execute/sync", Some(&body))
    }

    /// The WebDriver id of the first element matching the CSS `selector` (panics if none).
    pub(super) fn find(&self, selector: &str) -> String {
        let body = json!({ "using": "css selector", "value": selector });
        let found = self.session_call("POST", "/element", Some(&body));
        let id = found[ELEMENT].as_str();
        id.unwrap_or_else(|| panic!("no element id for {selector}: {found}"))
            .to_string()
    }

    /// Click the element matching `selector`, as a user would.
    pub(super) fn click(&self, selector: &str) {
        let id = self.find(selector);
        self.session_call("POST", &format!("/element/{id}/click"), Some(&json!({})));
    }

    /// Replace the value of the input matching `selector` by typing `text` into it.
    pub(super) fn type_into(&self, selector: &str, text: &str) {
        let id = self.find(selector);
        self.session_call("POST", &format!("/element/{id}/clear"), Some(&json!({})));
        let keys = json!({ "text": text });
        self.session_call("POST", &format!("/element/{id}/value"), Some(&keys));
    }

    pub(super) fn set_window_size(&self, width: u32, height: u32) {
        let rect = json!({ "width": width, "height": height });
        self.session_call("POST", "/window/rect", Some(&rect));
    }

    /// The visible page as PNG bytes.
    pub(super) fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let png = self.session_call("GET", "/screenshot", None);
        let png = png.as_str().expect("a base64 screenshot");
        base64::engine::general_purpose::STANDARD
            .decode(png)
            .expect("screenshot is base64")
    }

    /// Every process to reap: ChromeDriver's descendants and anything on our profile dir.
    fn leftovers(&self) -> Vec<i32> {
        let profile = self.profile.path().to_string_lossy().into_owned();
        let mut parent = BTreeMap::new();
        let mut on_profile = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // `pid (comm) state ppid ...`; comm may hold spaces, so split after the last ')'.
            if let Some(ppid) = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok())
            {
                parent.insert(pid, ppid);
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&profile) {
                on_profile.push(pid);
            }
        }
        let mut out = BTreeSet::from_iter(on_profile);
        let mut todo = vec![self.driver.id() as i32];
        while let Some(p) = todo.pop() {
            for (&child, &pp) in &parent {
                if pp == p && out.insert(child) {
                    todo.push(child);
                }
            }
        }
        out.into_iter().collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(sid) = self.session.take() {
            // Quits Chromium cleanly.
            let _ = http::try_request(self.addr, "DELETE", &format!("/session/{sid}"), &[], b"");
        }
        for pid in self.leftovers() {
            // SAFETY: kill(2) on a PID this test started (or a descendant of it).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
