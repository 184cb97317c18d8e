//! Journeys in a real headless Chromium, driven through chromedriver only by what a person
//! does: open a link they were given, type, click, read. Every page a journey reaches is
//! checked by axe-core; a serious or critical violation fails the journey.
//!
//! Each journey gets its own chromedriver, its own browser profile, its own server and its
//! own database. A failing journey leaves a screenshot and the page's HTML of every browser
//! it opened under `target/browser-failures/`.
//!
//! Without chromedriver or axe-core the journeys print why they were skipped and pass;
//! under `CI=true` a missing tool fails them instead.

mod accessibility;
mod admin_journeys;
mod admin_pages;
mod api_tokens;
mod entry;
mod expiry;
mod invitations;
mod members;
mod organization;
mod platform;
mod reset;
mod sessions;
mod two_factor;
mod users_tab;

use std::future::Future;
use std::net::TcpListener;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::smtp::Received;

/// Whether the browser runs the page's script. "Off" is Chromium's own content setting,
/// so the script really never runs, as for a visitor who turned it off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Js {
    On,
    Off,
}

/// chromedriver and the axe-core script, found once per test.
#[derive(Clone)]
struct Tools {
    chromedriver: PathBuf,
    chromium: Option<PathBuf>,
    axe_source: Arc<String>,
}

fn find_tools() -> std::result::Result<Tools, String> {
    let chromedriver = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| which("chromedriver"))
        .ok_or("chromedriver is not installed (apt-get install chromium chromium-driver)")?;
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| which("chromium"));
    let axe_path = std::env::var_os("AXE_CORE_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/browser-tools/node_modules/axe-core/axe.min.js")
        });
    let axe_source = std::fs::read_to_string(&axe_path).map_err(|e| {
        format!(
            "axe-core is not at {} ({e}); run: npm install --prefix target/browser-tools axe-core",
            axe_path.display()
        )
    })?;
    Ok(Tools {
        chromedriver,
        chromium,
        axe_source: Arc::new(axe_source),
    })
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// One journey: the browsers it opened (each photographed if it fails) and the tools.
#[derive(Clone)]
pub struct Journey {
    name: &'static str,
    tools: Tools,
    browsers: Arc<Mutex<Vec<Chrome>>>,
}

/// Runs `body` as the journey `name`, or prints why it was skipped. A failure (an error or
/// a panic) saves each browser's screenshot and HTML before failing the test.
pub async fn journey<F, Fut>(name: &'static str, body: F)
where
    F: FnOnce(Journey) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let tools = match find_tools() {
        Ok(tools) => tools,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("browser journey {name} cannot run under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("skipped browser journey {name}: {why}");
            return;
        }
    };
    let journey = Journey {
        name,
        tools,
        browsers: Arc::new(Mutex::new(Vec::new())),
    };
    let outcome = AssertUnwindSafe(body(journey.clone())).catch_unwind().await;
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:#}")),
        Err(panic) => Some(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into()),
        ),
    };
    let browsers: Vec<Chrome> = journey.browsers.lock().unwrap().drain(..).collect();
    if let Some(failure) = &failure {
        for (i, chrome) in browsers.iter().enumerate() {
            chrome.save_failure(name, i).await;
        }
        eprintln!("browser journey {name} failed: {failure}");
    }
    for chrome in browsers {
        chrome.close().await;
    }
    if let Some(failure) = failure {
        panic!("browser journey {name} failed: {failure}");
    }
}

impl Journey {
    /// A new browser with a fresh, empty profile, as a person on another computer.
    pub async fn browser(&self, app: &TestApp) -> Result<Chrome> {
        self.browser_with(app, Js::On).await
    }

    pub async fn browser_with(&self, app: &TestApp, js: Js) -> Result<Chrome> {
        let chrome = Chrome::launch(&self.tools, &app.address, js)
            .await
            .with_context(|| format!("starting Chromium for {}", self.name))?;
        self.browsers.lock().unwrap().push(chrome.clone());
        Ok(chrome)
    }
}

/// chromedriver runs as long as a browser of its own needs it.
struct Driver {
    child: Mutex<Child>,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// One browser window of one person.
#[derive(Clone)]
pub struct Chrome {
    pub client: Client,
    base: String,
    axe_source: Arc<String>,
    js: Js,
    /// The last URL axe checked, so re-reading a page does not check it twice.
    checked: Arc<Mutex<Option<String>>>,
    _driver: Arc<Driver>,
}

const WAIT: Duration = Duration::from_secs(10);

impl Chrome {
    /// A port is chosen free, then handed to chromedriver: another test's server or
    /// driver can take it in between, and the session then finds nobody (or the wrong
    /// listener) there. Such a start is tried again on another port, twice at most.
    async fn launch(tools: &Tools, base: &str, js: Js) -> Result<Self> {
        let mut tries = 0;
        loop {
            tries += 1;
            match Self::launch_once(tools, base, js).await {
                Err(e) if tries < 3 => eprintln!("chromedriver start {tries} failed, again: {e:#}"),
                started => return started,
            }
        }
    }

    async fn launch_once(tools: &Tools, base: &str, js: Js) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("running chromedriver")?;
        // The profile must outlive the browser, so the driver keeps it.
        let profile = tempfile::tempdir()?;
        let profile_dir = profile.path().display().to_string();
        let driver = Arc::new(Driver {
            child: Mutex::new(child),
            _profile: profile,
        });
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > WAIT {
                bail!("chromedriver did not listen on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Something listens there: it is ours only if ours is still running (another
        // process may have taken the port, and ours then stopped at once).
        if driver.child.lock().unwrap().try_wait()?.is_some() {
            bail!("chromedriver stopped: port {port} was taken");
        }
        let mut options = json!({
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1440,900",
                format!("--user-data-dir={profile_dir}"),
            ],
        });
        if let Some(chromium) = &tools.chromium {
            options["binary"] = json!(chromium);
        }
        if js == Js::Off {
            options["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("opening a chromedriver session")?;
        Ok(Chrome {
            client,
            base: base.to_string(),
            axe_source: tools.axe_source.clone(),
            js,
            checked: Arc::new(Mutex::new(None)),
            _driver: driver,
        })
    }

    async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    async fn save_failure(&self, name: &str, index: usize) {
        let dir = target_dir().join("browser-failures");
        let _ = std::fs::create_dir_all(&dir);
        let stem = format!("{name}-{index}");
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        if let Ok(png) = self.client.screenshot().await {
            let path = dir.join(format!("{stem}.png"));
            if std::fs::write(&path, png).is_ok() {
                eprintln!("screenshot of {url}: {}", path.display());
            }
        }
        if let Ok(html) = self.client.source().await {
            let path = dir.join(format!("{stem}.html"));
            if std::fs::write(&path, html).is_ok() {
                eprintln!("page HTML of {url}: {}", path.display());
            }
        }
    }

    /// Opens a link the person was given (a printed or mailed one, or a bookmark).
    pub async fn open(&self, path_or_url: &str) -> Result<()> {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        self.client
            .goto(&url)
            .await
            .with_context(|| format!("opening {url}"))?;
        self.arrived().await
    }

    /// The page's path and query, as the address bar shows it.
    pub async fn path(&self) -> Result<String> {
        let url = self.client.current_url().await?;
        Ok(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        })
    }

    /// What the page says, as a person reads it.
    pub async fn text(&self) -> Result<String> {
        Ok(self.client.find(Locator::Css("body")).await?.text().await?)
    }

    pub async fn title(&self) -> Result<String> {
        Ok(self.client.title().await?)
    }

    /// Fails unless the page says `wanted` (waiting briefly for it).
    pub async fn expect_text(&self, wanted: &str) -> Result<()> {
        let started = Instant::now();
        loop {
            // A page still being replaced after a click has no body for a moment.
            let text = match self.text().await {
                Ok(text) => text,
                Err(_) if started.elapsed() < Duration::from_secs(3) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if text.contains(wanted) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(3) {
                bail!(
                    "the page at {} does not say {wanted:?}; it says:\n{text}",
                    self.path().await.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn expect_no_text(&self, unwanted: &str) -> Result<()> {
        let text = self.text().await?;
        if text.contains(unwanted) {
            bail!("the page says {unwanted:?} but should not:\n{text}");
        }
        Ok(())
    }

    pub async fn expect_path(&self, wanted: &str) -> Result<()> {
        let path = self.path().await?;
        if path != wanted && !path.starts_with(&format!("{wanted}?")) {
            bail!("expected to be on {wanted}, but the browser shows {path}");
        }
        Ok(())
    }

    /// The form field whose label reads `label`: a `<label for>` or an `aria-label`.
    pub async fn field(&self, label: &str) -> Result<Element> {
        let literal = xpath_literal(label);
        let by_label =
            format!("//label[normalize-space(.)={literal} or normalize-space(text())={literal}]");
        if let Ok(found) = self.client.find(Locator::XPath(&by_label)).await {
            if let Some(id) = found.attr("for").await? {
                return Ok(self.client.find(Locator::Id(&id)).await?);
            }
            if let Ok(inner) = found.find(Locator::Css("input, select, textarea")).await {
                return Ok(inner);
            }
        }
        let by_aria = format!("//*[@aria-label={literal}]");
        let here = self.here().await;
        self.client
            .find(Locator::XPath(&by_aria))
            .await
            .with_context(|| format!("no field labelled {label:?} on {here}"))
    }

    async fn here(&self) -> String {
        self.path().await.unwrap_or_default()
    }

    /// Clears the field labelled `label` and types `value` into it.
    pub async fn fill(&self, label: &str, value: &str) -> Result<()> {
        let field = self.field(label).await?;
        field.clear().await?;
        field
            .send_keys(value)
            .await
            .with_context(|| format!("typing into {label:?}"))
    }

    /// Chooses the option whose text is `option` in the select labelled `label`.
    pub async fn select(&self, label: &str, option: &str) -> Result<()> {
        let field = self.field(label).await?;
        field
            .select_by_label(option)
            .await
            .with_context(|| format!("choosing {option:?} in {label:?}"))
    }

    /// Ticks (or unticks) the checkbox labelled `label`.
    pub async fn tick(&self, label: &str) -> Result<()> {
        self.field(label)
            .await?
            .click()
            .await
            .with_context(|| format!("ticking {label:?}"))
    }

    /// Clicks the button reading `text`; with several, the first on the page.
    pub async fn press(&self, text: &str) -> Result<()> {
        let button = self.button(None, text).await?;
        self.click(button, text).await
    }

    /// Clicks the button reading `text` inside the table row of `email`.
    pub async fn press_in_row(&self, email: &str, text: &str) -> Result<()> {
        let button = self.button(Some(email), text).await?;
        self.click(button, text).await
    }

    /// Clicks the button reading `text` in the page's main content, not the header's menus
    /// (e.g. a "Sign out" button on the page itself).
    pub async fn press_in_main(&self, text: &str) -> Result<()> {
        let literal = xpath_literal(text);
        let xpath = format!(
            "//main//button[normalize-space(.)={literal}] | \
             //main//input[(@type='submit' or @type='button') and @value={literal}]"
        );
        let here = self.here().await;
        let button = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .with_context(|| format!("no button {text:?} in the main content of {here}"))?;
        self.click(button, text).await
    }

    /// Presses the button (or button-styled link) reading `text` in the row of `email`,
    /// then says yes however the portal asks "are you sure?": a browser dialog (accepted)
    /// or a confirmation page (its submit button is pressed).
    pub async fn press_in_row_and_confirm(&self, email: &str, text: &str) -> Result<()> {
        let here = self.here().await;
        self.button(Some(email), text)
            .await?
            .click()
            .await
            .with_context(|| format!("clicking {text:?} on {here}"))?;
        if self.client.get_alert_text().await.is_ok() {
            self.client
                .accept_alert()
                .await
                .context("accepting the dialog")?;
        }
        self.arrived().await?;
        if let Ok(confirm) = self
            .client
            .find(Locator::XPath(
                "//*[@data-confirm-page]//form//button[@type='submit']",
            ))
            .await
        {
            self.click(confirm, "the confirmation button").await?;
        }
        Ok(())
    }

    async fn button(&self, row_email: Option<&str>, text: &str) -> Result<Element> {
        let literal = xpath_literal(text);
        let scope = match row_email {
            Some(email) => format!("//tr[@data-email={}]", xpath_literal(email)),
            None => String::new(),
        };
        let xpath = format!(
            "{scope}//button[normalize-space(.)={literal}] | \
             {scope}//input[(@type='submit' or @type='button') and @value={literal}] | \
             {scope}//a[contains(concat(' ', @class, ' '), ' button ') and normalize-space(.)={literal}] | \
             {scope}//ul[contains(concat(' ', @class, ' '), ' menu-list ')]//a[normalize-space(.)={literal}]"
        );
        let found = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .with_context(|| {
                format!(
                    "no button {text:?}{} on the page",
                    row_email
                        .map(|e| format!(" in the row of {e}"))
                        .unwrap_or_default()
                )
            })?;
        // A row's actions sit in its menu: a person opens the menu first.
        if let Some(email) = row_email
            && !found.is_displayed().await.unwrap_or(true)
        {
            self.open_row_menu(email).await?;
        }
        Ok(found)
    }

    /// Chooses `email` in the member picker whose legend reads `legend`: types the
    /// address, presses Search (which reloads the page with the matches, with or without
    /// JavaScript) and ticks the match.
    pub async fn pick_member(&self, legend: &str, email: &str) -> Result<()> {
        self.search_members(legend, email).await?;
        self.tick_match(legend, email).await
    }

    /// Types `term` into the member picker whose legend reads `legend` and presses its
    /// Search button (which reloads the page with the matches, with or without
    /// JavaScript).
    pub async fn search_members(&self, legend: &str, term: &str) -> Result<()> {
        let scope = format!(
            "//fieldset[legend[normalize-space(.)={}]]",
            xpath_literal(legend)
        );
        let here = self.here().await;
        let search = self
            .client
            .find(Locator::XPath(&format!("{scope}//input[@type='search']")))
            .await
            .with_context(|| format!("no member picker {legend:?} on {here}"))?;
        search.clear().await?;
        search.send_keys(term).await?;
        let button = self
            .client
            .find(Locator::XPath(&format!(
                "{scope}//button[normalize-space(.)='Search']"
            )))
            .await?;
        self.click(button, "Search").await
    }

    /// Ticks `email` among the matches the picker `legend` shows, waiting briefly for
    /// them (the script fills them in as one types).
    pub async fn tick_match(&self, legend: &str, email: &str) -> Result<()> {
        let xpath = format!(
            "//fieldset[legend[normalize-space(.)={}]]//li[@data-email={}]//input[@type='radio']",
            xpath_literal(legend),
            xpath_literal(email)
        );
        let started = Instant::now();
        loop {
            if let Ok(radio) = self.client.find(Locator::XPath(&xpath)).await {
                radio.click().await?;
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(3) {
                bail!(
                    "the picker {legend:?} does not offer {email}:\n{}",
                    self.text().await.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens the actions menu of the table row of `email`.
    pub async fn open_row_menu(&self, email: &str) -> Result<()> {
        let xpath = format!(
            "//tr[@data-email={}]//details[contains(concat(' ', @class, ' '), ' row-menu ')]/summary",
            xpath_literal(email)
        );
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .with_context(|| format!("no actions menu in the row of {email}"))?
            .click()
            .await?;
        Ok(())
    }

    /// Opens a disclosure menu (a `<summary>`) such as "Account menu".
    pub async fn open_menu(&self, label: &str) -> Result<()> {
        let xpath = format!(
            "//summary[contains(normalize-space(.), {})]",
            xpath_literal(label)
        );
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .with_context(|| format!("no menu {label:?}"))?
            .click()
            .await?;
        Ok(())
    }

    /// Signs out from the account menu, as a person does.
    pub async fn sign_out(&self) -> Result<()> {
        self.open_menu("Account menu").await?;
        self.press("Sign out").await
    }

    /// Signs in from the sign-in page the browser is on.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<()> {
        self.fill("Email", email).await?;
        self.fill("Password", password).await?;
        self.press("Sign in").await
    }

    /// Follows the link reading `text`.
    pub async fn follow(&self, text: &str) -> Result<()> {
        let here = self.here().await;
        self.follow_under("", text, &format!("on {here}")).await
    }

    /// Follows the link reading `text` inside the region (a `nav`, a section) whose
    /// accessible label is `region`, e.g. the member profile's "Member" tabs.
    pub async fn follow_within(&self, region: &str, text: &str) -> Result<()> {
        let scope = format!("//*[@aria-label={}]", xpath_literal(region));
        self.follow_under(&scope, text, &format!("in {region:?}"))
            .await
    }

    /// Follows the link reading `text` inside the table row of `email`.
    pub async fn follow_in_row(&self, email: &str, text: &str) -> Result<()> {
        let scope = format!("//tr[@data-email={}]", xpath_literal(email));
        let link = format!("{scope}//a[normalize-space(.)={}]", xpath_literal(text));
        if let Ok(found) = self.client.find(Locator::XPath(&link)).await
            && !found.is_displayed().await.unwrap_or(true)
        {
            self.open_row_menu(email).await?;
        }
        self.follow_under(&scope, text, &format!("in the row of {email}"))
            .await
    }

    /// Follows the first link reading `text` below the elements `scope` selects (an
    /// XPath; empty for the whole page). `where_` completes the error message.
    async fn follow_under(&self, scope: &str, text: &str, where_: &str) -> Result<()> {
        let xpath = format!("{scope}//a[normalize-space(.)={}]", xpath_literal(text));
        let link = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .with_context(|| format!("no link {text:?} {where_}"))?;
        self.click(link, text).await
    }

    async fn click(&self, element: Element, what: &str) -> Result<()> {
        let here = self.here().await;
        // Mark this page, so `arrived` can tell it from the page the click leads to.
        self.client
            .execute("window.journeyLeaving = true; return true;", vec![])
            .await?;
        element
            .click()
            .await
            .with_context(|| format!("clicking {what:?} on {here}"))?;
        self.arrived().await
    }

    /// Presses keys on whatever has the focus, as a keyboard user does.
    pub async fn keys(&self, keys: &str) -> Result<()> {
        self.client
            .active_element()
            .await?
            .send_keys(keys)
            .await
            .context("pressing keys")?;
        Ok(())
    }

    pub async fn tab(&self) -> Result<()> {
        self.keys(&char::from(Key::Tab).to_string()).await
    }

    /// After a navigation: wait for the page, then check it with axe once.
    async fn arrived(&self) -> Result<()> {
        // A click's navigation can start after the click returns, while the page it was
        // made on still reads "complete": wait (briefly, for clicks that stay) until the
        // marked page is gone.
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(2) {
            let marked = self
                .client
                .execute("return window.journeyLeaving === true;", vec![])
                .await;
            if matches!(marked, Ok(Value::Bool(false))) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let started = Instant::now();
        loop {
            let ready = self
                .client
                .execute("return document.readyState", vec![])
                .await
                .ok();
            if ready == Some(Value::String("complete".into())) {
                break;
            }
            if started.elapsed() > WAIT {
                bail!("the page did not finish loading");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let url = self.client.current_url().await?.to_string();
        if self.checked.lock().unwrap().as_deref() == Some(url.as_str()) {
            return Ok(());
        }
        self.check_accessibility().await?;
        *self.checked.lock().unwrap() = Some(url);
        Ok(())
    }

    /// Runs axe-core on the page; serious and critical violations are failures. WebDriver
    /// runs the script outside the page's CSP and its JavaScript setting.
    pub async fn check_accessibility(&self) -> Result<()> {
        // With JavaScript off, Chromium runs promises for WebDriver's script but never
        // fires its timers, which axe schedules its work with.
        let timers = match self.js {
            Js::On => "",
            Js::Off => {
                "window.setTimeout = function (f) { var rest = [].slice.call(arguments, 2); \
                 Promise.resolve().then(function () { f.apply(null, rest); }); return 0; }; \
                 window.clearTimeout = function () {};"
            }
        };
        self.client
            .execute(
                &format!("{timers}\n{}\nreturn true;", self.axe_source),
                vec![],
            )
            .await
            .context("loading axe-core into the page")?;
        let found = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                axe.run(document, { resultTypes: ["violations"] }).then(
                  (r) => done(r.violations
                    .filter((v) => v.impact === "serious" || v.impact === "critical")
                    .map((v) => v.impact + " " + v.id + ": " + v.help + " at " +
                      v.nodes.map((n) => n.target.join(" ")).join(", "))),
                  (e) => done(["axe failed: " + e]));"#,
                vec![],
            )
            .await
            .context("running axe-core")?;
        let violations: Vec<String> = serde_json::from_value(found)?;
        if !violations.is_empty() {
            bail!(
                "axe found {} serious or critical violation(s) on {}:\n{}",
                violations.len(),
                self.here().await,
                violations.join("\n")
            );
        }
        Ok(())
    }

    /// The `data-*` attribute values of every table row, e.g. `rows("email")`.
    pub async fn rows(&self, attribute: &str) -> Result<Vec<String>> {
        let mut values = Vec::new();
        for row in self
            .client
            .find_all(Locator::Css("tbody tr[data-id]"))
            .await?
        {
            if let Some(v) = row.attr(&format!("data-{attribute}")).await? {
                values.push(v);
            }
        }
        Ok(values)
    }

    /// A `data-*` attribute of the row of `email`.
    pub async fn row_attr(&self, email: &str, attribute: &str) -> Result<String> {
        self.row(email)
            .await?
            .attr(&format!("data-{attribute}"))
            .await?
            .ok_or_else(|| anyhow!("the row of {email} has no data-{attribute}"))
    }

    pub async fn row_text(&self, email: &str) -> Result<String> {
        Ok(self.row(email).await?.text().await?)
    }

    /// The table row marked `data-email="{email}"`.
    async fn row(&self, email: &str) -> Result<Element> {
        self.client
            .find(Locator::XPath(&format!(
                "//tr[@data-email={}]",
                xpath_literal(email)
            )))
            .await
            .with_context(|| format!("no row for {email}"))
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// A string as an XPath literal, whatever quotes it holds.
fn xpath_literal(s: &str) -> String {
    if !s.contains('"') {
        format!("\"{s}\"")
    } else if !s.contains('\'') {
        format!("'{s}'")
    } else {
        let parts: Vec<String> = s.split('"').map(|p| format!("\"{p}\"")).collect();
        format!("concat({})", parts.join(", '\"', "))
    }
}

/// The newest email to `address` that the portal wrote to its mail folder, decoded.
pub async fn mailed_to(app: &TestApp, address: &str) -> Result<Received> {
    let dir = app.settings.data_dir.join("mail");
    let started = Instant::now();
    loop {
        let mut found: Vec<(std::time::SystemTime, Received)> = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let Ok(raw) = std::fs::read_to_string(entry.path()) else {
                    continue;
                };
                let mail = Received {
                    to: vec![address.to_string()],
                    raw,
                };
                if mail
                    .header("To")
                    .is_some_and(|to| to.to_lowercase().contains(&address.to_lowercase()))
                {
                    let modified = entry.metadata()?.modified()?;
                    found.push((modified, mail));
                }
            }
        }
        if let Some((_, mail)) = found.into_iter().max_by_key(|(t, _)| *t) {
            return Ok(mail);
        }
        if started.elapsed() > WAIT {
            bail!("no email to {address} in {}", dir.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every email to `address`, oldest first.
pub fn all_mail_to(app: &TestApp, address: &str) -> Vec<Received> {
    let dir = app.settings.data_dir.join("mail");
    let mut found: Vec<(std::time::SystemTime, Received)> = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(raw) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let mail = Received {
            to: vec![address.to_string()],
            raw,
        };
        if mail
            .header("To")
            .is_some_and(|to| to.to_lowercase().contains(&address.to_lowercase()))
            && let Ok(t) = entry.metadata().and_then(|m| m.modified())
        {
            found.push((t, mail));
        }
    }
    found.sort_by_key(|(t, _)| *t);
    found.into_iter().map(|(_, m)| m).collect()
}

/// The path of the newest link starting with `prefix` mailed to `to` in an email that
/// mentions `mentioning`, waiting for the outbox to deliver it.
pub async fn newest_link_mailed(app: &TestApp, to: &str, prefix: &str, mentioning: &str) -> String {
    for _ in 0..100 {
        let newest = all_mail_to(app, to)
            .into_iter()
            .rev()
            .filter(|mail| mail.decoded().contains(mentioning))
            .find_map(|mail| mail.link_path(prefix));
        if let Some(link) = newest {
            return link;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {prefix} link mailed to {to}");
}
